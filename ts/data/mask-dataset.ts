// `maskfr mask IN OUT` as a function: a masked copy of an image folder, a .rec or a .bin, of
// the same kind, made on every core by the native engine (maskfr-masks' offline module), with
// `OUT.masks.jsonl` beside it saying which mask each image got.

import os from 'node:os';
import { native } from '../native';
import { landmarkOptions, MAX_BAD_SHARE } from './recordio';

export interface MaskDatasetOptions {
  /** `template`, `renderer` or `both` (default). */
  synthesizer?: 'template' | 'renderer' | 'both';
  /** Share of the images masked (default 1). */
  probability?: number;
  /** With both synthesizers: the template's share of the masked images (default 0.5). */
  templateShare?: number;
  kinds?: string[];
  colors?: string[];
  patterns?: string[];
  textures?: string;
  /** Image i is masked with seed mix(seed, i) (default 0). */
  seed?: number;
  threads?: number;
  /** JPEG quality of re-encoded JPEGs (default 95). */
  quality?: number;
  /** Share of bad images copied unmasked and listed; one more refuses the run (default pack's). */
  maxBad?: number;
  /** Replace an existing OUT. */
  overwrite?: boolean;
  /** A folder input's landmarks file (as `pack --landmarks` reads it): each image masked on
   *  its own face; an image it does not name is bad. */
  landmarks?: string;
  onProgress?: (p: { total: number; done: number; bad: number }) => void;
}

export interface MaskDatasetResult {
  kind: 'folder' | 'rec' | 'bin';
  images: number;
  masked: number;
  bad: number;
  /** Other files (a folder) or records that are not images (a .rec) copied as they were. */
  copied: number;
  byMask: { synthesizer: string; kind: string; count: number }[];
  sidecar: string;
  badList: string | null;
}

export async function maskDataset(input: string, out: string, o: MaskDatasetOptions = {}): Promise<MaskDatasetResult> {
  const seed = o.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`mask: the seed must be a whole number ≥ 0, got ${seed}`);
  const job = native.MaskJob.start(input, out, {
    choices: { synthesizer: o.synthesizer, probability: o.probability ?? 1, templateShare: o.templateShare, kinds: o.kinds, colors: o.colors, patterns: o.patterns, textures: o.textures },
    seed,
    threads: o.threads ?? os.availableParallelism(),
    quality: o.quality ?? 95,
    maxBad: o.maxBad ?? MAX_BAD_SHARE,
    overwrite: o.overwrite ?? false,
    ...landmarkOptions(o.landmarks),
  });
  const tick = o.onProgress && setInterval(() => o.onProgress?.(job.progress()), 200);
  try {
    const r = await job.finish();
    o.onProgress?.(job.progress());
    return { ...r, kind: r.kind as MaskDatasetResult['kind'], badList: r.badList ?? null };
  } finally {
    clearInterval(tick);
  }
}
