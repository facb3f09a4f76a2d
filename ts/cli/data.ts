// Data commands: `maskfr synth` (the bundled synthetic faces), `maskfr pack` (an image
// folder into RecordIO), `maskfr inspect` (counts and a contact sheet of a .rec),
// `maskfr augment --preview` (masked faces).

import fs from 'node:fs';
import { native } from '../native';
import { SYNTH_DEFAULTS, writeSyntheticDataset } from '../data/synth-dataset';
import { RecordDataset, writeRecordDataset } from '../data/recordio';
import { readImageFolder } from '../data/image-folder';
import { syntheticFace } from '../data/synthetic-faces';
import { rng } from '../tensor/random';
import { synthesizeMask, Synthesizer } from '../data/masks';
import { parseArgs } from './args';

export function synth(argv: string[]): number {
  const p = parseArgs('synth', argv, ['identities', 'per-identity', 'held-out', 'pairs', 'seed', 'quality']);
  const [dir] = p.positional;
  if (dir === undefined) throw new Error('synth: usage: maskfr synth OUT_DIR [--identities N] [--per-identity K] [--held-out H] [--pairs P] [--seed S]');
  const num = (name: string, d: number) => {
    const v = Number(p.options.get(name) ?? d);
    if (!Number.isInteger(v) || v < 0) throw new Error(`synth: --${name} must be a non-negative integer, got ${p.options.get(name)}`);
    return v;
  };
  const d = SYNTH_DEFAULTS;
  const o = {
    identities: num('identities', d.identities),
    perIdentity: num('per-identity', d.perIdentity),
    heldOut: num('held-out', d.heldOut),
    pairs: num('pairs', d.pairs),
    seed: num('seed', d.seed),
    quality: num('quality', d.quality),
  };
  const t = performance.now();
  const out = writeSyntheticDataset(dir, o);
  console.log(`wrote ${out.rec} (${o.identities} identities × ${o.perIdentity} images) and ${out.bin} (${o.pairs} pairs of ${o.heldOut} held-out identities) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  return 0;
}

export function pack(argv: string[]): number {
  const p = parseArgs('pack', argv, []);
  const [dir, out] = p.positional;
  if (dir === undefined || out === undefined || !out.endsWith('.rec')) throw new Error('pack: usage: maskfr pack DIR OUT.rec');
  const f = readImageFolder(dir);
  writeRecordDataset(out, f.files.map((file, i) => ({ label: f.labels[i], body: fs.readFileSync(file) })));
  console.log(`wrote ${out} and ${out.replace(/\.rec$/, '.idx')}: ${f.files.length} images of ${f.identities.length} identities`);
  return 0;
}

export function inspect(argv: string[]): number {
  const p = parseArgs('inspect', argv, ['sheet', 'seed']);
  const [rec] = p.positional;
  if (rec === undefined) throw new Error('inspect: usage: maskfr inspect X.rec [--sheet OUT.png]');
  const ds = RecordDataset.open(rec);
  const counts = ds.identities ? ds.identities.map((i) => i.end - i.start) : [];
  const sorted = [...counts].sort((a, b) => a - b);
  console.log(`${rec}: ${ds.length} images, ${ds.identities?.length ?? 'unknown (no InsightFace header)'} identities`);
  if (sorted.length > 0) console.log(`images per identity: min ${sorted[0]}, median ${sorted[sorted.length >> 1]}, max ${sorted[sorted.length - 1]}`);
  const sheet = p.options.get('sheet') ?? rec.replace(/\.rec$/, '.sheet.png');
  const r = rng(Number(p.options.get('seed') ?? 0));
  const picks = Array.from({ length: Math.min(32, ds.length) }, () => Math.floor(r() * ds.length));
  const imgs = picks.map((i) => native.decodeImage(ds.sample(i).body, `${rec} image ${i}`));
  fs.writeFileSync(sheet, native.encodePng(contactSheet(imgs, 8), 8 * 112, Math.ceil(imgs.length / 8) * 112));
  console.log(`wrote ${sheet} (${imgs.length} random samples)`);
  return 0;
}

/** Tiles RGB images (resized to 112×112 by nearest neighbour) into rows of `cols`. */
function contactSheet(imgs: { width: number; height: number; data: Buffer }[], cols: number): Buffer {
  const S = 112;
  const rows = Math.ceil(imgs.length / cols);
  const out = Buffer.alloc(rows * S * cols * S * 3);
  imgs.forEach((img, k) => {
    const [ox, oy] = [(k % cols) * S, Math.floor(k / cols) * S];
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const src = (Math.floor((y * img.height) / S) * img.width + Math.floor((x * img.width) / S)) * 3;
        img.data.copy(out, ((oy + y) * cols * S + ox + x) * 3, src, src + 3);
      }
    }
  });
  return out;
}

/** `maskfr augment --preview N OUT.png`: N synthetic faces, each plain, template-masked and
 *  renderer-masked, two faces to a row. */
export function augment(argv: string[]): number {
  const p = parseArgs('augment', argv, ['preview', 'seed']);
  const [out] = p.positional;
  const n = Number(p.options.get('preview') ?? 16);
  if (out === undefined || !Number.isInteger(n) || n < 1) throw new Error('augment: usage: maskfr augment --preview N OUT.png [--seed S]');
  const seed = Number(p.options.get('seed') ?? 0);
  const S = 112;
  const tiles: { width: number; height: number; data: Buffer }[] = [];
  for (let i = 0; i < n; i++) {
    const face = Buffer.from(syntheticFace(seed + 1, i, 0));
    const s = seed * 1000 + i;
    const masked = (synthesizer: Synthesizer) => synthesizeMask(face, S, S, { synthesizer, seed: s });
    tiles.push(...[face, masked('template'), masked('renderer')].map((data) => ({ width: S, height: S, data })));
  }
  fs.writeFileSync(out, native.encodePng(contactSheet(tiles, 6), 6 * S, Math.ceil(tiles.length / 6) * S));
  console.log(`wrote ${out}: ${n} faces, each plain, with a template mask and with a rendered mask`);
  return 0;
}
