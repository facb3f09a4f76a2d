// Writes the synthetic-faces dataset: a training `.rec`/`.idx` (JPEG records, InsightFace
// layout) and a `.bin` verification set of held-out identities, half genuine pairs.

import fs from 'node:fs';
import path from 'node:path';
import { native } from '../native';
import { SIZE, syntheticFace } from './synthetic-faces';
import { rng } from '../tensor/random';
import { writeRecordDataset } from './recordio';
import { encodeVerificationBin } from './verification-bin';
import { writeFileAtomic } from '../io/atomic';

export interface SyntheticFacesOptions {
  identities: number;
  perIdentity: number;
  /** Held-out identities the verification pairs are drawn from. */
  heldOut: number;
  pairs: number;
  seed: number;
  quality: number;
}

export const SYNTHETIC_FACES_DEFAULTS: SyntheticFacesOptions = { identities: 100, perIdentity: 20, heldOut: 50, pairs: 600, seed: 1, quality: 95 };

const jpeg = (rgb: Uint8Array, quality: number) => native.encodeJpeg(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), SIZE, SIZE, quality);

/** Writes `dir/train.rec`, `dir/train.idx` and `dir/verify.bin`; returns their paths. */
export function writeSyntheticDataset(dir: string, o: SyntheticFacesOptions = SYNTHETIC_FACES_DEFAULTS): { rec: string; bin: string } {
  if (o.identities < 1 || o.perIdentity < 1) throw new Error(`synthetic faces: need at least one identity and one image each, got ${o.identities}×${o.perIdentity}`);
  if (o.pairs > 0 && o.heldOut < 2) throw new Error(`synthetic faces: verification pairs need at least 2 held-out identities, got ${o.heldOut}`);
  fs.mkdirSync(dir, { recursive: true });
  const samples = [];
  for (let p = 0; p < o.identities; p++) {
    for (let i = 0; i < o.perIdentity; i++) samples.push({ label: p, body: jpeg(syntheticFace(o.seed, p, i), o.quality) });
  }
  const rec = path.join(dir, 'train.rec');
  writeRecordDataset(rec, samples);
  // Held-out identities are numbered after the training ones; images 1000+ never overlap.
  const r = rng(o.seed * 31 + 7);
  const images: Buffer[] = [];
  const issame: boolean[] = [];
  for (let k = 0; k < o.pairs; k++) {
    const same = k % 2 === 0;
    const a = o.identities + Math.floor(r() * o.heldOut);
    let b = a;
    while (!same && b === a) b = o.identities + Math.floor(r() * o.heldOut);
    images.push(jpeg(syntheticFace(o.seed, a, 1000 + 2 * k), o.quality), jpeg(syntheticFace(o.seed, b, 1001 + 2 * k), o.quality));
    issame.push(same);
  }
  const bin = path.join(dir, 'verify.bin');
  writeFileAtomic(bin, [encodeVerificationBin({ images, issame })]);
  return { rec, bin };
}
