// The trainer on cuda:0 (skipped, with the reason, without a GPU; bench/gpu/run.sh runs it on
// a lent one, where MASKFR_REQUIRE_GPU=1 fails it instead of skipping): the same first steps
// as on the CPU from the same seed — losses within 1%, with TF32 off — and f16 steps with a
// loss scale.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveConfig, setTf32, train, TrainConfig, writeSyntheticDataset } from '../ts';
import { gpuTest } from './helpers/gpu';

const losses = (dir: string) =>
  fs
    .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { loss?: number; lossScale?: number })
    .filter((m) => m.loss !== undefined);

gpuTest("the trainer takes the CPU's steps on cuda:0, in f32 and f16", async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-gpu-train-'));
  const data = writeSyntheticDataset(path.join(root, 'data'), { identities: 10, perIdentity: 8, heldOut: 6, pairs: 40, seed: 3, quality: 90 });
  const cfg = (name: string, extra: Partial<TrainConfig>): TrainConfig => ({
    network: 'tiny', data: data.rec, output: path.join(root, name), steps: 4, batchSize: 8, warmupSteps: 1, logEvery: 1, checkpointEvery: 0, loaderThreads: 1, ...extra,
  });
  const before = setTf32({ convolutions: false, matmul: false });
  try {
    for (const [name, extra] of [['cpu', {}], ['gpu', { device: 'cuda:0' }], ['gpu-f16', { device: 'cuda:0', precision: 'f16' as const, lossScale: 1024 }]] as const) {
      const r = await train(resolveConfig(cfg(name, extra)), { quiet: true });
      t.is(r.model.device, name === 'cpu' ? 'cpu' : 'cuda:0');
      r.model.dispose();
    }
  } finally {
    setTf32(before);
  }
  const [cpu, gpu, f16] = ['cpu', 'gpu', 'gpu-f16'].map((n) => losses(path.join(root, n)));
  cpu.forEach((m, i) => t.true(Math.abs(gpu[i].loss! - m.loss!) <= 1e-2 * Math.abs(m.loss!), `step ${i + 1}: gpu ${gpu[i].loss} vs cpu ${m.loss}`));
  t.true(f16.every((m) => Number.isFinite(m.loss) && typeof m.lossScale === 'number'));
});
