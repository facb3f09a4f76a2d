// CPU training: images/s of the demo's training step (the `small` IResNet, batch 64,
// CosFace over 100 classes, clip 5, SGD) ours vs PyTorch eager (same architecture, batch,
// threads), interleaved; and the sharded classifier's step for 100k classes and a global
// batch of 128 on 1 and 2 ranks (separate processes), whole and chunked, with its peak
// memory growth. Torch's number there is a single-process full-softmax CosFace step.

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { clipGradNorm, Communicator, createModel, randn, SGD, ShardedMarginSoftmax, tidy, worldFromEnv } from '../../ts';
import type { TorchReference } from '../reference';
import { median, Result } from './types';
import { ROUNDS, settle, time, TIMING } from './timing';

const BATCH = 64;
const CLASSES = 100;

async function trainStep(torch: TorchReference | null): Promise<Result> {
  const model = createModel('small');
  const head = new ShardedMarginSoftmax(Communicator.connect(worldFromEnv()), model.config.embedding, CLASSES, { seed: 1 });
  const opt = new SGD([...model.parameters(), ...head.parameters()], { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  const x = randn([BATCH, 3, 112, 112]);
  const labels = Array.from({ length: BATCH }, (_, i) => i % CLASSES);
  let step = 0;
  const once = () =>
    tidy(() => {
      head.loss(model.forward(x), labels, step++).backward();
      clipGradNorm(model.parameters(), 5);
      opt.step();
      opt.zeroGrad();
    });
  const [ours, ref]: number[][] = [[], []];
  for (let r = 0; r < ROUNDS; r++) {
    await settle();
    ours.push(...time(once));
    await settle();
    if (torch) {
      const c = model.config;
      const req = { op: 'train_step', layers: c.layers, widths: c.widths, embedding: c.embedding, placement: c.stride, batch: BATCH, classes: CLASSES, ...TIMING };
      ref.push(...(await torch.ask<{ seconds: number[] }>(req)).seconds);
    }
  }
  opt.dispose();
  head.dispose();
  model.dispose();
  x.dispose();
  const rate = BATCH / median(ours);
  const refRate = torch ? BATCH / median(ref) : null;
  return { suite: 'train', name: `small b${BATCH} train step (CosFace ${CLASSES})`, unit: 'images/s', ours: rate, reference: refRate, ratio: refRate ? rate / refRate : null };
}

/** The classifier step on `world` rank processes: seconds and peak memory growth of rank 0. */
function classifier(world: number, chunk: number): { seconds: number; peakMiB: number; weightMiB: number } {
  const cli = path.join(__dirname, '..', '..', 'dist', 'cli', 'main.js');
  const helper = path.join(__dirname, '..', 'helpers', 'classifier.ts');
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, 'launch', '--nproc-per-node', String(world), '--master-port', '0', '--', helper], {
    encoding: 'utf8',
    env: { ...process.env, CLASSES: '100000', BATCH: '128', CHUNK: String(chunk) },
  });
  if (r.status !== 0) throw new Error(`classifier bench W=${world} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { seconds: number; peakMiB: number; weightMiB: number };
}

export async function trainSuite(torch: TorchReference | null): Promise<Result[]> {
  const results = [await trainStep(torch)];
  const ref = torch ? median((await torch.ask<{ seconds: number[] }>({ op: 'cosface_head', classes: 100000, batch: 128, embedding: 512, ...TIMING })).seconds) : null;
  for (const [world, chunk] of [[1, 0], [1, 8192], [2, 0], [2, 8192]]) {
    const c = classifier(world, chunk);
    const label = `classifier 100k×512 B128 W=${world}${chunk ? ` chunk ${chunk}` : ''}`;
    results.push({ suite: 'train', name: `${label} step`, unit: 'steps/s', ours: 1 / c.seconds, reference: world === 1 && ref ? 1 / ref : null, ratio: world === 1 && ref ? ref / c.seconds : null });
    results.push({ suite: 'train', name: `${label} peak growth (shard ${c.weightMiB.toFixed(0)} MiB)`, unit: 'MiB', ours: c.peakMiB, reference: null, ratio: null });
  }
  return results;
}
