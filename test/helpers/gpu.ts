// GPU tests for ava: each runs where cuda:0 works and is skipped, saying why, where it does
// not (CI, laptops); with MASKFR_REQUIRE_GPU=1 (bench/gpu/run.sh on a lent GPU) it fails
// instead, naming what did not load, so a GPU run cannot pass by skipping everything. With
// MASKFR_CUDA_EMULATE=1, cuda:0 is the emulated device (crates/cuda-emu) and they run: CI.

import test, { ExecutionContext } from 'ava';
import { gpuProblem } from '../../ts';

/** Why cuda:0 cannot be used here (driver, library or device), or null when it can. */
export const noGpu = gpuProblem();

export function gpuTest(title: string, body: (t: ExecutionContext) => void | Promise<void>): void {
  if (noGpu === null) test(title, body);
  else if (process.env.MASKFR_REQUIRE_GPU === '1') test(title, (t) => t.fail(`MASKFR_REQUIRE_GPU=1 and this test cannot run: ${noGpu}`));
  else test.skip(`${title} (skipped: ${noGpu.slice(0, 60)})`, body);
}
