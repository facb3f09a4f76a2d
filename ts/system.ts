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

/** Why `cuda:0` cannot be used here (no driver, library or GPU), or null when it can
 *  (NCCL is only needed between GPUs). */
export function gpuProblem(): string | null {
  const probe = native.cudaProbe();
  if (probe.problem) return probe.problem;
  const missing = probe.libraries.filter((l) => !l.loaded && l.name !== 'nccl').map((l) => l.name);
  if (missing.length > 0) return `missing ${missing.join(', ')}`;
  return probe.gpus.length > 0 ? null : 'no GPU found';
}
