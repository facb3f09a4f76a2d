// Reading the sidecar `maskfr mask` writes beside a pre-masked set (`<OUT>.masks.jsonl`; format
// in the README): a header line `{"maskfr_masks": 1, …}`, then one line per image in input
// order, `{"key", "synthesizer", "kind", "color", "pattern"}`. Every line is checked against
// the set's own image keys, so a sidecar of another set (or of the set before a repack) is
// refused, naming the file and line, rather than mislabelling the breakdown.

import fs from 'node:fs';
import path from 'node:path';
import { RecordDataset } from '../data/recordio';
import { FolderDataset } from '../data/image-folder';
import { DrawnMask, MASK_KINDS } from './breakdown';

export const SIDECAR_VERSION = 1;

export interface MaskSidecar {
  file: string;
  header: Record<string, unknown>;
  /** Image i's mask, in the set's order. */
  masks: DrawnMask[];
}

/** Where `maskfr mask` puts the sidecar of `data` (a folder, `.rec` or `.bin`). */
export function sidecarPath(data: string): string {
  return `${data.replace(/[/\\]+$/, '')}.masks.jsonl`;
}

/** The sidecar's key of each image of `data`: a `.bin`'s image index (`binImages` of them),
 *  a `.rec`'s record key, a folder image's path relative to the folder with `/` separators. */
export function sidecarKeys(data: string, binImages = 0): (number | string)[] {
  if (data.endsWith('.bin')) return Array.from({ length: binImages }, (_, i) => i);
  if (fs.statSync(data).isDirectory()) {
    const f = FolderDataset.scan(data);
    return Array.from({ length: f.length }, (_, i) => path.relative(data, f.path(i)).split(path.sep).join('/'));
  }
  const r = RecordDataset.open(data);
  return Array.from({ length: r.length }, (_, i) => r.handle.imageKey(i)!);
}

/** Reads and checks `file` against the set's image `keys` (in order). */
export function readMaskSidecar(file: string, keys: readonly (number | string)[], set = 'the set'): MaskSidecar {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read the masks sidecar (${e instanceof Error ? e.message : String(e)})`);
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const parse = (n: number): Record<string, unknown> => {
    let v: unknown;
    try {
      v = JSON.parse(lines[n - 1]);
    } catch (e) {
      throw new Error(`${file} line ${n}: not JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${file} line ${n}: expected a JSON object, got ${lines[n - 1].slice(0, 80)}`);
    return v as Record<string, unknown>;
  };
  if (lines.length === 0) throw new Error(`${file}: empty; a masks sidecar starts with a header line {"maskfr_masks": ${SIDECAR_VERSION}, …}`);
  const header = parse(1);
  if (!('maskfr_masks' in header)) throw new Error(`${file} line 1: not a masks sidecar header (no "maskfr_masks" key)`);
  if (header.maskfr_masks !== SIDECAR_VERSION) throw new Error(`${file} line 1: sidecar version ${JSON.stringify(header.maskfr_masks)}, this maskfr reads version ${SIDECAR_VERSION}`);
  if (lines.length - 1 !== keys.length) {
    const where = lines.length - 1 < keys.length ? `line ${lines.length + 1} (image ${lines.length - 1}) is missing` : `line ${keys.length + 2} is past the last image`;
    throw new Error(`${file}: ${lines.length - 1} image lines for the ${keys.length} images of ${set}: ${where}`);
  }
  const masks = keys.map((key, i): DrawnMask => {
    const n = i + 2;
    const o = parse(n);
    if (o.key !== key) throw new Error(`${file} line ${n}: key ${JSON.stringify(o.key)}, expected ${JSON.stringify(key)} (image ${i} of ${set}): the sidecar is of another set or order`);
    const { synthesizer, kind } = o;
    if (synthesizer === null) {
      if (kind !== null) throw new Error(`${file} line ${n}: kind ${JSON.stringify(kind)} on an unmasked image (synthesizer null)`);
      return { synthesizer: null, kind: null };
    }
    if (typeof synthesizer !== 'string' || !(synthesizer in MASK_KINDS)) throw new Error(`${file} line ${n}: synthesizer ${JSON.stringify(synthesizer)}, expected "template", "renderer" or null`);
    if (typeof kind !== 'string' || !MASK_KINDS[synthesizer].includes(kind)) throw new Error(`${file} line ${n}: kind ${JSON.stringify(kind)}, expected one of ${MASK_KINDS[synthesizer].join(', ')} for the ${synthesizer} synthesizer`);
    return { synthesizer, kind };
  });
  return { file, header, masks };
}
