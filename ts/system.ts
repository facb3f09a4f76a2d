// Facts about this machine and build that benchmarks and `maskfr doctor` print.

import os from 'node:os';
import { native } from './native';

export interface SystemInfo {
  cpu: string;
  cores: number;
  computeThreads: number;
  node: string;
  platform: string;
}

export function systemInfo(): SystemInfo {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    computeThreads: native.computeThreads(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}
