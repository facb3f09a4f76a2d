// Records read + JPEG-decoded + flipped + normalised per second on ONE core (loader with a
// single worker thread), on 112×112 synthetic-face JPEG records, vs PyTorch's usual pipeline
// (PIL decode, flip, ToTensor + Normalize) on the same records, single-threaded.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Loader, writeSyntheticDataset } from '../../ts';
import type { TorchReference } from '../reference';
import { median, Result } from './types';
import { ROUNDS, settle, TIMING } from './timing';

const IMAGES = { identities: 40, perIdentity: 10 };
const BATCH = 50;

async function oursPerSecond(rec: string): Promise<number> {
  const loader = Loader.fromRecord(rec, { batch: BATCH, threads: 1, prefetch: 2, seed: 1 });
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
  for (let r = 0; r < ROUNDS; r++) {
    await settle();
    ours.push(await oursPerSecond(rec));
    await settle();
    if (torch) {
      const res = await torch.ask<{ seconds: number[]; images: number }>({ op: 'decode', rec, ...TIMING });
      ref.push(res.images / median(res.seconds));
    }
  }
  const o = median(ours);
  const t = torch ? median(ref) : null;
  fs.rmSync(dir, { recursive: true, force: true });
  return [{ suite: 'data', name: 'decode+flip+normalise 112² JPEG, 1 core', unit: 'images/s', ours: o, reference: t, ratio: t ? o / t : null }];
}
