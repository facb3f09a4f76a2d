// Records read + JPEG-decoded + flipped + normalised per second on ONE core (loader with a
// single worker thread), on 112×112 synthetic-face JPEG records, vs PyTorch's usual pipeline
// (PIL decode, flip, ToTensor + Normalize) on the same records, single-threaded. Two more
// rows price the photometric augmentation in the same loader: its defaults (insightface's
// recipe: colour jitter on every sample, JPEG recompression on half) and every op on every
// sample (the worst case); no PyTorch row for those. Last, `alignFace` (insightface's
// norm_crop, as `maskfr align` and `pack --align` use it) from a photograph's five landmarks
// to 112², with either warp: OpenCV 4.x's fixed point and 5.x's float.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { alignFace, Loader, readLandmarks, writeSyntheticDataset } from '../../ts';
import type { AlignWarp } from '../../ts';
import { native } from '../../ts/native';
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

/** Crops per second of `alignFace` with `warp`, 500 ms a round. */
async function alignsPerSecond(warp: AlignWarp): Promise<number> {
  const fixtures = path.join(__dirname, '..', '..', 'test', 'fixtures');
  const [face] = readLandmarks(path.join(fixtures, 'align_5pts_score.txt'));
  const img = native.decodeImage(fs.readFileSync(path.join(fixtures, face.name)), face.name);
  await settle();
  let n = 0;
  const t0 = performance.now();
  for (; performance.now() - t0 < 500; n++) alignFace(img, face.points, 112, face.name, warp);
  return n / ((performance.now() - t0) / 1000);
}

export async function dataSuite(torch: TorchReference | null): Promise<Result[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-bench-data-'));
  const { rec } = writeSyntheticDataset(dir, { ...IMAGES, heldOut: 2, pairs: 0, seed: 1, quality: 95 });
  const ours: number[] = [];
  const ref: number[] = [];
  const jittered: number[] = [];
  const everyOp: number[] = [];
  const aligned: Record<AlignWarp, number[]> = { fixed: [], float: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const w of ['fixed', 'float'] as const) aligned[w].push(await alignsPerSecond(w));
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
    row('norm_crop to 112², fixed warp (OpenCV 4.x), 1 core', aligned.fixed),
    row('norm_crop to 112², float warp (OpenCV 5.x), 1 core', aligned.float),
  ];
}
