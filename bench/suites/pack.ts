// `maskfr pack` at WebFace scale: images/s per core and peak RSS packing folders of 10k, 100k
// (and with MASKFR_BENCH_PACK_1M=1, 1M) images — one 112² synthetic-face JPEG hard-linked
// under every name, 10 per identity, every one read and fully decoded — and the training
// loader's start-up (open the .rec, read its layout, start an epoch, first batch) and peak
// RSS on a 1M-record .rec of 200k identities (the same tiny record: what is measured is the
// index). Each measurement runs in a fresh process (`node --import tsx bench/suites/pack.ts
// pack|load …` is that process) so its peak RSS is its own.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Loader, packRecordDataset, RecordDataset, writeRecordDataset } from '../../ts';
import { native } from '../../ts/native';
import { syntheticFace } from '../../ts/data/synthetic-faces';
import { Result } from './types';

const PER_IDENTITY = 10;

interface Measured {
  seconds: number;
  peakMiB: number;
}

/** The measuring process: one pack or one loader start-up. */
async function measure(args: string[]): Promise<Measured> {
  const start = process.resourceUsage().maxRSS;
  const t = performance.now();
  if (args[0] === 'pack') {
    const r = await packRecordDataset({ folder: args[1] }, args[2], { threads: Number(args[3]), maxBad: 0 });
    if (r.bad > 0) throw new Error(`pack bench: ${r.bad} bad images`);
  } else {
    const loader = Loader.fromRecord(RecordDataset.open(args[1]), { batch: 64, threads: 1, size: 8, flip: false });
    const first = await loader.epoch(0).next();
    if (first.done) throw new Error('pack bench: no batch');
    first.value.images.dispose();
  }
  return { seconds: (performance.now() - t) / 1000, peakMiB: (process.resourceUsage().maxRSS - start) / 1024 };
}

function child(args: string[]): Measured {
  const r = spawnSync(process.execPath, ['--import', 'tsx', __filename, ...args], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`pack bench: ${args[0]} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Measured;
}

/** ext4 allows 65000 links to a file: a copy of the face per this many images. */
const LINKS_PER_COPY = 50_000;

/** `n` images in `root/<identity>/<i>.jpg`, hard links to copies of `face` (no disk used per
 *  image). */
function linkFolder(face: string, root: string, n: number): void {
  for (let k = 0; k < n; k++) {
    const [id, i] = [Math.floor(k / PER_IDENTITY), k % PER_IDENTITY];
    const dir = path.join(root, String(id).padStart(7, '0'));
    if (i === 0) fs.mkdirSync(dir, { recursive: true });
    const copy = `${root}.${Math.floor(k / LINKS_PER_COPY)}.jpg`;
    if (k % LINKS_PER_COPY === 0) fs.copyFileSync(face, copy);
    fs.linkSync(copy, path.join(dir, `${i}.jpg`));
  }
}

export async function packSuite(): Promise<Result[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-bench-pack-'));
  const cores = os.availableParallelism();
  const results: Result[] = [];
  const row = (name: string, unit: string, ours: number) => results.push({ suite: 'pack', name, unit, ours, reference: null, ratio: null });
  try {
    const face = path.join(dir, 'face.jpg');
    fs.writeFileSync(face, native.encodeJpeg(Buffer.from(syntheticFace(1, 0, 0)), 112, 112, 95));
    const kib = fs.statSync(face).size / 1024;
    const sizes = [10_000, 100_000, ...(process.env.MASKFR_BENCH_PACK_1M === '1' ? [1_000_000] : [])];
    for (const n of sizes) {
      const root = path.join(dir, `faces-${n}`);
      linkFolder(face, root, n);
      for (const threads of n === sizes[0] ? [1, cores] : [cores]) {
        const m = child(['pack', root, path.join(dir, 'out.rec'), String(threads)]);
        const label = `${n.toLocaleString('en')} images of ${kib.toFixed(1)} KiB, ${threads} thread${threads > 1 ? 's' : ''}`;
        row(`pack ${label}`, 'images/s/core', n / m.seconds / threads);
        row(`pack ${label}: peak RSS growth`, 'MiB', m.peakMiB);
      }
      fs.rmSync(root, { recursive: true });
    }
    const rec = path.join(dir, 'big.rec');
    const tiny = native.encodePng(Buffer.alloc(8 * 8 * 3, 100), 8, 8);
    writeRecordDataset(rec, Array.from({ length: 1_000_000 }, (_, i) => ({ label: Math.floor(i / 5), body: tiny })));
    const m = child(['load', rec]);
    row('loader start-up, 1M-record .rec of 200k identities (open, layout, first batch)', 's', m.seconds);
    row('loader start-up, 1M-record .rec of 200k identities: peak RSS growth', 'MiB', m.peakMiB);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

if (require.main === module) {
  measure(process.argv.slice(2)).then((m) => console.log(JSON.stringify(m)));
}
