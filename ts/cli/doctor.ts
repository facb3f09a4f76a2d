// `maskfr doctor`: what this machine offers: CPU and threads, the native build, and what
// the CUDA backend finds (driver, GPUs, and each library: the file that loaded or every
// name tried), with what to do about what is missing.

import { native } from '../native';
import { systemInfo } from '../system';
import { Command } from './args';

export const doctor: Command = {
  summary: 'what this machine offers: CPU, CUDA driver, GPUs and libraries (and what is missing)',
  usage: 'maskfr doctor',
  options: [],
  example: 'maskfr doctor',
  run: diagnose,
};

function diagnose(): number {
  const s = systemInfo();
  console.log(`CPU: ${s.cpu}, ${s.cores} cores, ${s.computeThreads} compute threads; Node ${s.node} on ${s.platform}`);
  const c = native.cudaProbe();
  const v = c.driverVersion;
  console.log(`CUDA driver: ${v === undefined || v === null ? 'none' : `${Math.floor(v / 1000)}.${(v % 1000) / 10} (driver API)`}`);
  for (const g of c.gpus) {
    const kernels = g.target ? `kernels compile to ${g.target}` : `kernels cannot run: ${g.targetProblem}`;
    console.log(`GPU ${g.index}: ${g.name}, sm_${g.arch}, ${(g.memoryBytes / 2 ** 30).toFixed(1)} GiB; ${kernels}`);
  }
  for (const l of c.libraries) {
    const found = l.loaded ?? null;
    console.log(`lib${l.name} (${l.purpose}): ${found !== null ? `loaded as ${found}` : `not found (tried ${l.searched.join(', ')})`}`);
  }
  if (c.nvrtc) console.log(`NVRTC ${c.nvrtc}: kernels can be compiled`);
  if (c.problem) console.log(`GPU training unavailable: ${c.problem}. Training runs on the CPU.`);
  if (c.libraries.some((l) => !l.loaded)) {
    console.log(
      "Missing libraries: pip's CUDA 13 wheels (nvidia-cuda-nvrtc, cuBLAS, cuDNN, NCCL) put them under site-packages/nvidia/…/lib; add those folders to LD_LIBRARY_PATH (NCCL ships libnccl.so.2: give it a libnccl.so link there).",
    );
  }
  return 0;
}
