// Records read + JPEG-decoded + flipped + normalised per second on ONE core (loader with a
// single worker thread), on 112×112 synthetic-face JPEG records, vs PyTorch's usual pipeline
// (PIL decode, flip, ToTensor + Normalize) on the same records, single-threaded. Two more
// rows price the photometric augmentation in the same loader: its defaults (insightface's
// recipe: colour jitter on every sample, JPEG recompression on half) and every op on every
// sample (the worst case); no PyTorch row for those.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Loader, writeSyntheticDataset } from '../../ts';
import type { PhotometricOptions } from '../../ts';
import type { TorchReference } from '../reference';
import { median, Result } from './types';
import { ROUNDS, settle, TIMING } from './timing';

const IMAGES = { identities: 40, perIdentity: 10 };
const BATCH = 50;

/** Every op on every sample: blur, JPEG and erasing as well as the colour jitter. */
const EVERY_OP: PhotometricOptions = { blur: { probability: 1 }, jpeg: { probability: 1 }, erasing: { probability: 1, fill: 'random' } };

async function oursPerSecond(rec: string, photometric?: PhotometricOptions): Promise<number> {
  const loader = Loader.fromRecord(rec, { batch: BATCH, threads: 1, prefetch: 2, seed: 1, photometric });
  let images = 0;
  const t0 = performance.now();
  for (let epoch = 0; performance.now() - t0 < 1000; epoch++) {
    for await (const b of loader.epoch(epoch)) {
      images += b.labels.length;
      b.images.dispose();
    }
  }
  return images / ((performance.now() - t0) / 1000);
}

export async function dataSuite(torch: TorchReference | null): Promise<Result[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-bench-data-'));
  const { rec } = writeSyntheticDataset(dir, { ...IMAGES, heldOut: 2, pairs: 0, seed: 1, quality: 95 });
  const ours: number[] = [];
  const ref: number[] = [];
  const jittered: number[] = [];
  const everyOp: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    await settle();
    ours.push(await oursPerSecond(rec));
    jittered.push(await oursPerSecond(rec, {}));
    everyOp.push(await oursPerSecond(rec, EVERY_OP));
    await settle();
    if (torch) {
      const res = await torch.ask<{ seconds: number[]; images: number }>({ op: 'decode', rec, ...TIMING });
      ref.push(res.images / median(res.seconds));
    }
  }
  const o = median(ours);
  const t = torch ? median(ref) : null;
  fs.rmSync(dir, { recursive: true, force: true });
  const row = (name: string, v: number[]): Result => ({ suite: 'data', name, unit: 'images/s', ours: median(v), reference: null, ratio: null });
  return [
    { suite: 'data', name: 'decode+flip+normalise 112² JPEG, 1 core', unit: 'images/s', ours: o, reference: t, ratio: t ? o / t : null },
    row('the same + photometric defaults (jitter, JPEG on half), 1 core', jittered),
    row('the same + every photometric op on every sample, 1 core', everyOp),
  ];
}
