// Data commands: `maskfr synthetic-faces` (the bundled synthetic faces), `maskfr pack` (an
// image folder, a .lst or a .rec into RecordIO), `maskfr inspect` (counts and a contact sheet of a .rec),
// `maskfr augment --preview` (faces masked by the two mask synthesizers, or with --photometric
// masked and jittered).

import fs from 'node:fs';
import os from 'node:os';
import { native } from '../native';
import { SYNTHETIC_FACES_DEFAULTS, writeSyntheticDataset } from '../data/synthetic-faces-dataset';
import { MAX_BAD_SHARE, packRecordDataset, PackInput, RecordDataset } from '../data/recordio';
import { DEFAULT_ALIGN_WARP } from '../data/align';
import { WARP_HELP, warpOption } from './align';
import { syntheticFace } from '../data/synthetic-faces';
import { rng } from '../tensor/random';
import { synthesizeMask, Synthesizer } from '../data/masks';
import { photometricAugment } from '../data/photometric';
import { loadConfig } from '../train/config';
import { Command, integerOption, Parsed } from './args';
import { progressBar } from './progress-bar';

const d = SYNTHETIC_FACES_DEFAULTS;
const MAX_SIDE = native.MAX_IMAGE_SIDE;

export const syntheticFaces: Command = {
  summary: 'write the synthetic-faces dataset: train.rec/.idx and a verify.bin of held-out identities',
  usage: 'maskfr synthetic-faces OUT_DIR [options]',
  options: [
    { name: 'identities', value: 'N', default: String(d.identities), help: 'training identities' },
    { name: 'per-identity', value: 'K', default: String(d.perIdentity), help: 'images of each' },
    { name: 'held-out', value: 'H', default: String(d.heldOut), help: 'identities kept out of training for the verification pairs' },
    { name: 'pairs', value: 'P', default: String(d.pairs), help: 'verification pairs (half genuine)' },
    { name: 'seed', value: 'S', default: String(d.seed), help: 'the faces drawn' },
    { name: 'quality', value: 'Q', default: String(d.quality), help: 'JPEG quality' },
  ],
  example: 'maskfr synthetic-faces data/synthetic --identities 30 --per-identity 12',
  run: writeFaces,
};

function writeFaces(p: Parsed): number {
  const [dir] = p.positional;
  if (dir === undefined) throw new Error(`synthetic-faces: usage: ${syntheticFaces.usage}`);
  const num = (name: string) => integerOption(p, name, 0);
  const o = {
    identities: num('identities'),
    perIdentity: num('per-identity'),
    heldOut: num('held-out'),
    pairs: num('pairs'),
    seed: num('seed'),
    quality: num('quality'),
  };
  const t = performance.now();
  const out = writeSyntheticDataset(dir, o);
  console.log(`wrote ${out.rec} (${o.identities} identities × ${o.perIdentity} images) and ${out.bin} (${o.pairs} pairs of ${o.heldOut} held-out identities) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  return 0;
}

export const pack: Command = {
  summary: `pack an image folder (one sub-folder per identity), an insightface .lst or a .rec (a subset of its identities) into RecordIO, streamed on every core; every image is decoded first (JPEG/PNG, at most ${MAX_SIDE}x${MAX_SIDE}), bad ones listed in OUT.bad.txt and skipped`,
  usage: 'maskfr pack DIR|LIST.lst|IN.rec OUT.rec [options]',
  options: [
    { name: 'root', value: 'DIR', help: "a .lst's paths are relative to DIR, which allows absolute paths and '..'", defaultHelp: "the list's folder, which they may not leave" },
    { name: 'identities', value: 'FILE', help: 'with IN.rec: pack only the identities whose labels FILE lists (one a line), renumbered 0… in ascending order' },
    { name: 'landmarks', value: 'FILE', help: "each image's five landmarks (.json, .csv or insightface's 'name x1 y1 … x5 y5' lines; names are paths relative to the folder or the .lst's root), stored in its record header; an image without any is bad" },
    { name: 'align', help: "store each image as its 112x112 ArcFace crop from its landmarks (insightface's norm_crop), with the landmarks moved into the crop" },
    { name: 'quality', value: 'Q', default: '95', help: 'with --align: the JPEG quality of the crops' },
    { name: 'warp', value: 'float|fixed', default: DEFAULT_ALIGN_WARP, help: `with --align: ${WARP_HELP}` },
    { name: 'max-bad', value: 'SHARE', default: String(MAX_BAD_SHARE), help: 'the share of bad images skipped (listed in OUT.bad.txt); one more refuses the pack, writing only that list (0: any bad image refuses it)' },
    { name: 'threads', value: 'N', default: String(os.availableParallelism()), help: 'threads reading and decoding' },
    { name: 'progress', help: 'a progress bar on stderr also when it is not a terminal (a line every 10 s)' },
  ],
  example: 'maskfr pack faces/ data/train.rec',
  run: packCommand,
};

async function packCommand(p: Parsed): Promise<number> {
  const [src, out] = p.positional;
  if (src === undefined || out === undefined || !out.endsWith('.rec')) throw new Error(`pack: usage: ${pack.usage}`);
  const isDir = fs.existsSync(src) && fs.statSync(src).isDirectory();
  const input: PackInput = isDir ? { folder: src } : src.endsWith('.lst') ? { lst: src, root: p.options.get('root') } : src.endsWith('.rec') ? { rec: src, identities: p.options.get('identities') } : { folder: src };
  if (p.options.has('root') && !('lst' in input)) throw new Error('pack: --root is for a .lst input');
  if (p.options.has('identities') && !('rec' in input)) throw new Error('pack: --identities is for a .rec input');
  if (p.options.has('landmarks') && 'rec' in input) throw new Error("pack: a .rec brings its records' own landmarks: --landmarks is for a folder or a .lst");
  const align = p.flags.has('align');
  if (align && !p.options.has('landmarks') && !('rec' in input)) throw new Error('pack: --align needs --landmarks FILE');
  const quality = integerOption(p, 'quality', 1);
  if (quality > 100) throw new Error(`pack: --quality must be in [1, 100], got ${quality}`);
  const warp = warpOption(p, 'pack');
  const maxBad = Number(p.options.get('max-bad'));
  if (!(maxBad >= 0 && maxBad <= 1)) throw new Error(`pack: --max-bad must be a share in [0, 1], got ${p.options.get('max-bad')}`);
  const r = await packRecordDataset(input, out, {
    threads: integerOption(p, 'threads', 1),
    maxBad,
    landmarks: p.options.get('landmarks'),
    alignQuality: align ? quality : undefined,
    alignWarp: warp,
    onProgress: progressBar('pack', p.flags.has('progress')),
  });
  const empty = r.emptyIdentities > 0 ? ` (${r.emptyIdentities} of them without any image left: empty ranges)` : '';
  const bad = r.bad > 0 ? `; ${r.bad} bad image${r.bad > 1 ? 's' : ''} skipped, listed in ${r.badList}` : '';
  console.log(`wrote ${out} and ${out.replace(/\.rec$/, '.idx')}: ${r.images} images of ${r.identities} identities${empty}${bad}`);
  return 0;
}

export const inspect: Command = {
  summary: 'counts and a contact sheet of 32 random images of a dataset',
  usage: 'maskfr inspect X.rec [options]',
  options: [
    { name: 'sheet', value: 'OUT.png', help: 'where the contact sheet goes', defaultHelp: 'X.sheet.png beside X.rec' },
    { name: 'seed', value: 'S', default: '0', help: 'the images drawn' },
  ],
  example: 'maskfr inspect data/train.rec --sheet sheet.png',
  run: describe,
};

function describe(p: Parsed): number {
  const [rec] = p.positional;
  if (rec === undefined) throw new Error(`inspect: usage: ${inspect.usage}`);
  const ds = RecordDataset.open(rec);
  const counts = ds.identities ? ds.identities.map((i) => i.end - i.start) : [];
  const sorted = [...counts].sort((a, b) => a - b);
  console.log(`${rec}: ${ds.length} images, ${ds.identities?.length ?? 'unknown (no InsightFace header)'} identities`);
  if (sorted.length > 0) console.log(`images per identity: min ${sorted[0]}, median ${sorted[sorted.length >> 1]}, max ${sorted[sorted.length - 1]}`);
  if (ds.length === 0) throw new Error(`inspect: ${rec} holds no images: no contact sheet written`);
  const first = ds.sample(0).landmarks;
  console.log(`landmarks: ${first === null ? 'none (masks are placed on the aligned template)' : `five per image (the first image's: ${first.map((v) => v.toFixed(1)).join(' ')})`}`);
  const sheet = p.options.get('sheet') ?? rec.replace(/\.rec$/, '.sheet.png');
  const r = rng(integerOption(p, 'seed', 0));
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
 *  renderer-masked, two faces to a row; with `--photometric`, each plain, masked (template and
 *  renderer in turn) and masked with the photometric jitter on top, as the loader applies it. */
export const augment: Command = {
  summary: 'preview the mask synthesizers (synthetic faces plain, template-masked and renderer-masked) or, with --photometric, the photometric augmentation on top of them',
  usage: 'maskfr augment OUT.png [options]',
  options: [
    { name: 'preview', value: 'N', default: '16', help: 'faces on the sheet' },
    { name: 'seed', value: 'S', default: '0', help: 'the faces and masks drawn' },
    { name: 'photometric', help: "each face plain, masked, and masked then jittered (brightness, contrast, saturation, blur, JPEG, erasing) with the recipe's section or the defaults" },
    { name: 'config', value: 'FILE', help: "with --photometric: a training recipe whose photometric section to preview", defaultHelp: 'the defaults (PHOTOMETRIC_DEFAULTS)' },
  ],
  example: 'maskfr augment --preview 8 masks.png --photometric',
  run: preview,
};

function preview(p: Parsed): number {
  const [out] = p.positional;
  if (out === undefined) throw new Error(`augment: usage: ${augment.usage}`);
  const n = integerOption(p, 'preview', 1);
  const seed = integerOption(p, 'seed', 0);
  const jitter = p.flags.has('photometric');
  const file = p.options.get('config');
  if (file !== undefined && !jitter) throw new Error('augment: --config is for --photometric');
  const options = file === undefined ? {} : loadConfig(file).photometric;
  if (options === undefined) throw new Error(`augment: ${file} has no photometric section to preview`);
  const S = 112;
  const tiles: { width: number; height: number; data: Buffer }[] = [];
  for (let i = 0; i < n; i++) {
    const face = Buffer.from(syntheticFace(seed + 1, i, 0));
    const s = seed * 1000 + i;
    const masked = (synthesizer: Synthesizer) => synthesizeMask(face, S, S, { synthesizer, seed: s });
    const row = jitter
      ? ((m: Buffer) => [face, m, photometricAugment(m, S, S, { seed: s, options })])(masked(i % 2 === 0 ? 'template' : 'renderer'))
      : [face, masked('template'), masked('renderer')];
    tiles.push(...row.map((data) => ({ width: S, height: S, data })));
  }
  fs.writeFileSync(out, native.encodePng(contactSheet(tiles, 6), 6 * S, Math.ceil(tiles.length / 6) * S));
  console.log(`wrote ${out}: ${n} faces, each ${jitter ? 'plain, masked, and masked with photometric augmentation' : 'plain, with a template mask and with a rendered mask'}`);
  return 0;
}
