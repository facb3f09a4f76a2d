// Photometric augmentation (brightness, contrast, saturation, Gaussian blur, JPEG
// recompression, random erasing): the loader's workers run it after the masks from each
// sample's seed; this file holds its options, their checks and a one-image version for
// previews. The ops and their defaults live in Rust (maskfr-io's photometric.rs).

import { native } from '../native';

/** With `probability`, a factor uniform in `range` ([min, max]; torchvision ColorJitter's
 *  formulas: brightness 0.125 is [0.875, 1.125]). */
export interface JitterOptions {
  probability?: number;
  range?: [number, number];
}

export interface PhotometricOptions {
  brightness?: JitterOptions;
  contrast?: JitterOptions;
  saturation?: JitterOptions;
  /** Gaussian blur with a sigma uniform in `sigma` (pixels; kernel radius ⌈3σ⌉, reflected borders). */
  blur?: { probability?: number; sigma?: [number, number] };
  /** JPEG recompression (libjpeg-turbo, 4:2:0) at an integer quality uniform in `quality`. */
  jpeg?: { probability?: number; quality?: [number, number] };
  /** torchvision's RandomErasing: a rectangle of a share of the area in `scale`, aspect ratio
   *  (height/width) log-uniform in `ratio`, filled with noise ('random') or an [r, g, b] colour. */
  erasing?: { probability?: number; scale?: [number, number]; ratio?: [number, number]; fill?: 'random' | [number, number, number] };
}

type Section = Required<{ [K in keyof PhotometricOptions]: Required<NonNullable<PhotometricOptions[K]>> }>;

/** insightface's MXNet recipe (image_iter.py): colour jitter 0.125 on every sample, JPEG at
 *  quality 2–20 on half of them; blur and erasing off (their ranges torchvision's defaults). */
export const PHOTOMETRIC_DEFAULTS: Readonly<Section> = Object.freeze(native.photometricDefaults() as Section);

const FIELDS: Record<keyof PhotometricOptions, Record<string, 'p' | 'pair' | 'fill'>> = {
  brightness: { probability: 'p', range: 'pair' },
  contrast: { probability: 'p', range: 'pair' },
  saturation: { probability: 'p', range: 'pair' },
  blur: { probability: 'p', sigma: 'pair' },
  jpeg: { probability: 'p', quality: 'pair' },
  erasing: { probability: 'p', scale: 'pair', ratio: 'pair', fill: 'fill' },
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const numbers = (v: unknown, n: number) => Array.isArray(v) && v.length === n && v.every((x) => typeof x === 'number');

/** Null when `v` is a valid photometric section, else what is wrong with it, naming the field
 *  (`photometric.blur.sigma must be …`): the shape here, the ranges by the Rust checks. */
export function photometricProblem(v: unknown): string | null {
  if (!isObject(v)) return `photometric must be an object of ops (${Object.keys(FIELDS).join(', ')}), got ${JSON.stringify(v)}`;
  for (const [op, o] of Object.entries(v)) {
    const fields = FIELDS[op as keyof PhotometricOptions];
    if (fields === undefined) return `photometric has no op '${op}' (known: ${Object.keys(FIELDS).join(', ')})`;
    if (o === undefined) continue;
    if (!isObject(o)) return `photometric.${op} must be an object of { ${Object.keys(fields).join(', ')} }, got ${JSON.stringify(o)}`;
    for (const [k, x] of Object.entries(o)) {
      const kind = fields[k];
      const name = `photometric.${op}.${k}`;
      if (kind === undefined) return `photometric.${op} has no field '${k}' (known: ${Object.keys(fields).join(', ')})`;
      if (x === undefined) continue;
      if (kind === 'p' && typeof x !== 'number') return `${name} must be a number in [0, 1], got ${JSON.stringify(x)}`;
      if (kind === 'pair' && !numbers(x, 2)) return `${name} must be [min, max], got ${JSON.stringify(x)}`;
      if (kind === 'fill' && x !== 'random' && !numbers(x, 3)) return `${name} must be 'random' or [r, g, b], got ${JSON.stringify(x)}`;
    }
  }
  return native.photometricProblem(v as Parameters<typeof native.photometricProblem>[0]) ?? null;
}

/** A copy of the RGB face (`width·height·3` bytes, HWC) after the photometric ops drawn from
 *  `seed` (defaults for what `options` leaves out). */
export function photometricAugment(rgb: Uint8Array, width: number, height: number, { seed = 0, options = {} }: { seed?: number; options?: PhotometricOptions } = {}): Buffer {
  const problem = photometricProblem(options);
  if (problem !== null) throw new Error(problem);
  return native.photometricAugment(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), width, height, seed, options as Parameters<typeof native.photometricAugment>[4]);
}
