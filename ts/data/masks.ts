// Masked-face synthesis on one aligned face: the two synthesizers the loader's workers run
// (templates warped from key points; commodity masks rendered on a posed head), for
// previews, custom pipelines and tests.

import { native } from '../native';

export type Synthesizer = 'template' | 'renderer';

export interface MaskOptions {
  synthesizer?: Synthesizer;
  /** Chooses the mask (shape, fabric, colour, pose of the drape). */
  seed?: number;
  /** Five landmarks as 10 numbers (x, y pairs, ArcFace order); default the 112×112 template. */
  landmarks?: number[] | null;
}

/** A copy of the RGB face (`width·height·3` bytes, HWC) wearing a synthesized mask. */
export function synthesizeMask(rgb: Uint8Array, width: number, height: number, { synthesizer = 'template', seed = 0, landmarks = null }: MaskOptions = {}): Buffer {
  const data = Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength);
  return synthesizer === 'template' ? native.templateMask(data, width, height, seed, landmarks) : native.renderMask(data, width, height, seed, landmarks);
}
