// InsightFace datasets in MXNet RecordIO (`train.rec` + `train.idx`). Record 0 with flag 2
// holds the image range `[1, a)` and identity range `[a, b)`: images are records 1…a−1,
// each identity record holds its `[start, end)` image keys. Without that header every
// record is an image labelled by its IRHeader. An image record may carry its face's five
// landmarks as 11 labels: the identity, then x1, y1, …, x5, y5.

import fs from 'node:fs';
import os from 'node:os';
import { native } from '../native';
import { AlignWarp, readLandmarks } from './align';

export interface Identity {
  label: number;
  /** Image keys `[start, end)`. */
  start: number;
  end: number;
}

export interface Sample {
  key: number;
  label: number;
  /** The encoded image. */
  body: Buffer;
  /** Its face's five landmarks (x1, y1, …, x5, y5), when its record carries them. */
  landmarks: number[] | null;
}

export class RecordDataset {
  private ranges: Identity[] | null | undefined;

  private constructor(
    readonly path: string,
    /** The `.idx` used, or null when the file was scanned. */
    readonly indexPath: string | null,
    /** The Rust reader, which holds the index and the layout (image keys, identity
     *  ranges): a million keys stay out of the JS heap. */
    readonly handle: ReturnType<typeof native.RecordReader.open>,
  ) {}

  /** Opens `X.rec` with `X.idx` beside it when there is one (else one scan of the file). */
  static open(rec: string, idx: string | null = rec.replace(/\.rec$/, '.idx')): RecordDataset {
    const useIdx = idx !== null && idx !== rec && fs.existsSync(idx) ? idx : null;
    return new RecordDataset(rec, useIdx, native.RecordReader.open(rec, useIdx));
  }

  get length(): number {
    return this.handle.images;
  }

  /** Identity ranges when the file has InsightFace's header, else null (built on first use). */
  get identities(): Identity[] | null {
    if (this.ranges === undefined) {
      const flat = this.handle.identityRanges();
      this.ranges = flat === null ? null : Array.from({ length: flat.length / 2 }, (_, i) => ({ label: i, start: flat[2 * i], end: flat[2 * i + 1] }));
    }
    return this.ranges;
  }

  /** Image `i` (0-based over the images) with its label and landmarks (bad landmarks, or a
   *  label count that is neither 1 nor 11, are an error naming the record). */
  sample(i: number): Sample {
    const key = Number.isInteger(i) && i >= 0 ? this.handle.imageKey(i) : null;
    if (key === null) throw new Error(`${this.path}: image ${i} is outside [0, ${this.length})`);
    const r = this.handle.readImage(key);
    return { key, label: r.label, body: r.body, landmarks: r.landmarks ?? null };
  }
}

/** Writes an InsightFace-layout dataset: samples grouped by label (ascending), record 0 with
 *  the image range, identity-range records after the images; `.rec` and `.idx` renamed into
 *  place when complete. */
export function writeRecordDataset(rec: string, samples: Iterable<{ label: number; body: Buffer }>, idx = rec.replace(/\.rec$/, '.idx')): void {
  const sorted = [...samples].sort((x, y) => x.label - y.label);
  // Counted in one pass (a filter per identity was O(images × identities)); ascending, as sorted.
  const counts = new Map<number, number>();
  for (const s of sorted) counts.set(s.label, (counts.get(s.label) ?? 0) + 1);
  const first = sorted.length + 1;
  const w = native.RecordWriterHandle.create(rec, idx);
  w.write(0, 0, 0, [first, first + counts.size], Buffer.alloc(0));
  sorted.forEach((s, i) => w.write(i + 1, s.label, i + 1, [], s.body));
  let at = 1;
  [...counts.values()].forEach((n, i) => {
    w.write(first + i, 0, 0, [at, at + n], Buffer.alloc(0));
    at += n;
  });
  w.finish();
}

export type PackInput = { folder: string } | { lst: string; root?: string } | { rec: string; identities?: string };

export interface PackOptions {
  /** Reader/validator threads (default: every core). */
  threads?: number;
  /** The share of the images that may be bad: listed in `X.bad.txt` and skipped; one more
   *  refuses the pack, writing nothing but that list (default 0.01; 0: strict). */
  maxBad?: number;
  /** A landmarks file (as `readLandmarks` reads it) naming each image of a folder or `.lst`
   *  by its path relative to the input's root: each image's five landmarks go into its
   *  IRHeader; an image it does not name is bad (listed and skipped, within `maxBad`). */
  landmarks?: string;
  /** Store each image as its 112×112 ArcFace crop (`norm_crop`), a JPEG of this quality, with
   *  its landmarks moved into the crop; needs landmarks (the file's, or a `.rec`'s own). */
  alignQuality?: number;
  /** With `alignQuality`: whose pixels the crops reproduce, OpenCV 5.x's warp (`float`, the
   *  default) or 4.x's (`fixed`); see `AlignWarp`. */
  alignWarp?: AlignWarp;
  /** Called about five times a second while the pack runs. */
  onProgress?: (p: { total: number; done: number; bad: number }) => void;
}

export interface PackResult {
  images: number;
  identities: number;
  /** Identities all of whose images were bad (empty ranges, so labels keep their meaning). */
  emptyIdentities: number;
  bad: number;
  /** Where the bad images are listed, one a line, when there are any. */
  badList: string | null;
}

/** The share of bad images a pack accepts by default: a few unreadable files in a scraped
 *  set are listed and skipped, a wrong folder is refused. */
export const MAX_BAD_SHARE = 0.01;

/** Packs an image folder, an insightface `.lst` or a `.rec` (a subset of its identities) into
 *  `out` (`X.rec` + `X.idx`, InsightFace's layout, renamed into place whole), streaming: a
 *  few chunks of images in memory whatever the size. Every image is fully decoded on
 *  `threads` threads first; bad ones are listed in `X.bad.txt` and skipped. */
export async function packRecordDataset(input: PackInput, out: string, o: PackOptions = {}): Promise<PackResult> {
  if (!out.endsWith('.rec')) throw new Error(`pack: ${out}: the output must be a .rec`);
  const job = native.PackJob.start(out, {
    ...('folder' in input ? { kind: 'folder', input: input.folder } : 'lst' in input ? { kind: 'lst', input: input.lst, root: input.root } : { kind: 'rec', input: input.rec, identities: input.identities }),
    threads: o.threads ?? os.availableParallelism(),
    maxBad: o.maxBad ?? MAX_BAD_SHARE,
    ...landmarkOptions(o.landmarks),
    alignQuality: o.alignQuality,
    alignWarp: o.alignWarp,
  });
  const tick = o.onProgress && setInterval(() => o.onProgress?.(job.progress()), 200);
  try {
    const r = await job.finish();
    o.onProgress?.(job.progress());
    return { images: r.images, identities: r.identities, emptyIdentities: r.emptyIdentities, bad: r.bad, badList: r.badList ?? null };
  } finally {
    clearInterval(tick);
  }
}

/** A landmarks file as the native options of pack and mask: its name, the images' paths and
 *  their points. */
export function landmarkOptions(file: string | undefined): { landmarksFile?: string; landmarkNames?: string[]; landmarkPoints?: number[] } {
  if (file === undefined) return {};
  const all = readLandmarks(file);
  return { landmarksFile: file, landmarkNames: all.map((f) => f.name), landmarkPoints: all.flatMap((f) => f.points) };
}
