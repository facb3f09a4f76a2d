// Masked faces synthesized per second on one core, per synthesizer, at 112×112, with
// landmarks per image: each call gets its own face pose (a small random similarity of the
// ArcFace template: ±8° roll, ±8% scale, ±4 px shift), as a .rec with landmarks hands them to
// the loader's workers (each call also copies the image in and out, which they do not need).
// Then `maskfr mask` on a folder of 112² JPEG faces: read, decode, mask, encode at quality 95,
// write and flush, images/s per core on 1 thread and on every core. No PyTorch counterpart:
// the reference column stays empty.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ARCFACE_TEMPLATE, syntheticFace } from '../../ts';
import { native } from '../../ts/native';
import { maskDataset } from '../../ts/data/mask-dataset';
import { rng } from '../../ts/tensor/random';
import type { TorchReference } from '../reference';
import { median, Result } from './types';
import { ROUNDS, settle } from './timing';

/** `n` sets of five landmarks, each the template moved by its own small similarity. */
function posedLandmarks(n: number, seed: number): number[][] {
  const r = rng(seed);
  const t = ARCFACE_TEMPLATE.flat();
  return Array.from({ length: n }, () => {
    const [a, s] = [((r() - 0.5) * 16 * Math.PI) / 180, 0.92 + 0.16 * r()];
    const [tx, ty] = [8 * (r() - 0.5), 8 * (r() - 0.5)];
    const out: number[] = [];
    for (let k = 0; k < 10; k += 2) {
      const [x, y] = [t[k] - 56, t[k + 1] - 56];
      out.push(56 + tx + s * (Math.cos(a) * x - Math.sin(a) * y), 56 + ty + s * (Math.sin(a) * x + Math.cos(a) * y));
    }
    return out;
  });
}

/** Images/s of `maskfr mask` on the folder `faces` of `n` images with `threads` threads. */
async function maskFolder(faces: string, out: string, n: number, threads: number): Promise<number> {
  fs.rmSync(out, { recursive: true, force: true });
  await settle();
  const t0 = performance.now();
  const r = await maskDataset(faces, out, { threads, seed: 1 });
  const secs = (performance.now() - t0) / 1000;
  if (r.images !== n || r.masked !== n) throw new Error(`masks bench: ${r.masked} of ${r.images} images masked, expected ${n}`);
  return n / secs;
}

export async function masksSuite(_torch: TorchReference | null): Promise<Result[]> {
  const faces = Array.from({ length: 16 }, (_, i) => Buffer.from(syntheticFace(1, i, 0)));
  const poses = posedLandmarks(256, 7);
  const results: Result[] = [];
  const row = (name: string, unit: string, ours: number) => results.push({ suite: 'masks', name, unit, ours, reference: null, ratio: null });
  for (const [name, synth] of [['template', native.templateMask], ['renderer', native.renderMask]] as const) {
    const rates: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      await settle();
      let n = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < 500) {
        synth(faces[n % faces.length], 112, 112, n, poses[n % poses.length]);
        n++;
      }
      rates.push(n / ((performance.now() - t0) / 1000));
    }
    row(`${name} synthesizer, 112², landmarks per image, 1 core`, 'images/s', median(rates));
  }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-bench-masks-'));
  try {
    const n = 2000;
    const folder = path.join(dir, 'faces');
    for (let k = 0; k < n; k++) {
      const id = path.join(folder, String(Math.floor(k / 10)).padStart(4, '0'));
      if (k % 10 === 0) fs.mkdirSync(id, { recursive: true });
      fs.writeFileSync(path.join(id, `${k % 10}.jpg`), native.encodeJpeg(Buffer.from(syntheticFace(2, Math.floor(k / 10), k % 10)), 112, 112, 95));
    }
    const cores = os.availableParallelism();
    for (const threads of cores > 1 ? [1, cores] : [1]) {
      const rate = await maskFolder(folder, path.join(dir, 'masked'), n, threads);
      row(`maskfr mask, folder of ${n} 112² JPEGs, ${threads} thread${threads > 1 ? 's' : ''}`, 'images/s/core', rate / threads);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log("masks: no PyTorch reference (the seed used insightface's tools; its renderer takes ~10 ms per image on one core)");
  return results;
}
