// Masked-face synthesis on one aligned face: the two synthesizers the loader's workers run
// (templates warped from key points; commodity masks rendered on a posed head), for
// previews, custom pipelines and tests; what may be drawn is restricted by name, as
// `maskfr mask`'s options do.

import { native } from '../native';

export type Synthesizer = 'template' | 'renderer';

export interface MaskOptions {
  synthesizer?: Synthesizer;
  /** Chooses the mask (shape, fabric, colour, pose of the drape). */
  seed?: number;
  /** Five landmarks as 10 numbers (x, y pairs, ArcFace order); default the 112×112 template. */
  landmarks?: number[] | null;
  /** Kinds drawn from: surgical, n95, kn95, cloth, gas (template); full, half (renderer). */
  kinds?: string[];
  /** The renderer's half mask (below the nose) rather than the full one: kinds ['half'] / ['full']. */
  half?: boolean;
  /** Colours drawn from: names (white, blue, black, green, grey, pink, navy, red, beige,
   *  purple, yellow, teal) or `#rrggbb`. */
  colors?: string[];
  /** The template's fabric patterns drawn from (solid, stripes, checks, dots, …). */
  patterns?: string[];
  /** A folder of fabric images (PNG/JPEG) the template prints. */
  textures?: string;
}

/** What a synthesizer drew. */
export interface MaskInfo {
  synthesizer: Synthesizer;
  kind: string;
  /** The main colour, `#rrggbb`. */
  color: string;
  pattern: string;
}

/** A copy of the RGB face (`width·height·3` bytes, HWC) wearing a synthesized mask, and what
 *  was drawn; names not known are refused listing the valid ones. */
export function drawMask(rgb: Uint8Array, width: number, height: number, o: MaskOptions = {}): { image: Buffer; mask: MaskInfo } {
  const { synthesizer = 'template', seed = 0, landmarks = null, half, kinds, colors, patterns, textures } = o;
  if (half !== undefined && kinds !== undefined) throw new Error('masks: give either half or kinds, not both');
  if (half !== undefined && synthesizer !== 'renderer') throw new Error('masks: half is the renderer\'s option (synthesizer: "renderer")');
  const data = Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength);
  const d = native.drawMask(data, width, height, seed, landmarks, {
    synthesizer,
    kinds: half === undefined ? kinds : [half ? 'half' : 'full'],
    colors,
    patterns,
    textures,
  });
  return { image: d.data, mask: { synthesizer: d.synthesizer as Synthesizer, kind: d.kind, color: d.color, pattern: d.pattern } };
}

/** A copy of the RGB face (`width·height·3` bytes, HWC) wearing a synthesized mask. */
export function synthesizeMask(rgb: Uint8Array, width: number, height: number, o: MaskOptions = {}): Buffer {
  return drawMask(rgb, width, height, o).image;
}
