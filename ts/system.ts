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

/** When f32 convolutions and matrix products on a GPU may use TF32 tensor cores (inputs
 *  rounded to a 10-bit mantissa). Defaults as PyTorch's: `torch.backends.cudnn.allow_tf32`
 *  (convolutions, on) and `torch.backends.cuda.matmul.allow_tf32` (matmul, off). */
export interface Tf32Policy {
  convolutions: boolean;
  matmul: boolean;
}

/** The TF32 policy in force. */
export function tf32(): Tf32Policy {
  return native.tf32();
}

/** Changes the TF32 policy for every later GPU op (a field left out keeps its value);
 *  returns the policy it replaced, so a caller can put it back. CPU ops compute in f32
 *  whatever it says. */
export function setTf32(p: Partial<Tf32Policy>): Tf32Policy {
  const before = tf32();
  native.setTf32({ ...before, ...p });
  return before;
}
