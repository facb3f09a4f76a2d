// The training loader: Rust worker threads read, decode, flip and normalise batches ahead of
// the trainer (nothing touches pixels on the JS thread); sharded by rank, shuffled per
// epoch from a seed, the same seed giving the same batches.

import os from 'node:os';
import { native } from '../native';
import { Tensor } from '../tensor/tensor';
import { RecordDataset } from './recordio';
import { FolderDataset } from './image-folder';
import type { PhotometricOptions } from './photometric';

export interface LoaderOptions {
  batch: number;
  seed?: number;
  rank?: number;
  world?: number;
  shuffle?: boolean;
  flip?: boolean;
  /** Side of the aligned faces (112). */
  size?: number;
  /** Batches built ahead. */
  prefetch?: number;
  threads?: number;
  /** Skip and count corrupt records instead of failing: a skipped sample's place in its
   *  batch goes to the next readable one, so batches stay full. */
  skipCorrupt?: boolean;
  /** With `skipCorrupt`: the share of this rank's samples in an epoch that may be corrupt
   *  (default MAX_CORRUPT_SHARE); one more stops the epoch with an error naming the data, the count and
   *  the share. */
  maxCorruptShare?: number;
  /** Share of samples given a synthesized mask by the workers (default 0: none; the seed
   *  team's share is MASK_DEFAULTS'). */
  maskProbability?: number;
  /** Share of the masked samples drawn by the template synthesizer, the rest rendered
   *  (default: MASK_DEFAULTS'). */
  maskTemplateShare?: number;
  /** Weights of the rendered masks' colours: white, blue, black, green, grey, pink
   *  (default 0.35, 0.3, 0.15, 0.08, 0.07, 0.05). */
  maskColorWeights?: number[];
  /** Photometric augmentation after the masks (brightness, contrast, saturation, blur, JPEG,
   *  erasing), drawn from each sample's seed; absent: none. Fields left out take
   *  PHOTOMETRIC_DEFAULTS' values. */
  photometric?: PhotometricOptions;
}

/** The seed team's masking: 35% of samples, split between the two synthesizers (the
 *  numbers live with the synthesizers, in maskfr-masks). */
export const MASK_DEFAULTS: Readonly<{ maskProbability: number; maskTemplateShare: number }> = Object.freeze(native.maskDefaults());

/** With `skipCorrupt`, 1% of an epoch's samples may be corrupt: a few bad files in a
 *  scraped set pass, a broken dataset (or the wrong folder) stops the run early. */
export const MAX_CORRUPT_SHARE = 0.01;

export interface Batch {
  images: Tensor;
  labels: Int32Array;
  /** Each sample's index in the dataset (keys precomputed teacher embeddings). */
  indices: Uint32Array;
  /** Which samples carry a synthesized mask (for the MoE head and the reports). */
  masked: boolean[];
  /** `[n, 10]` five landmarks per sample (x1, y1, …, x5, y5) as its image lies, mirrored with
   *  a flipped one, NaN for a sample whose record has none; null when none has any. The mask
   *  synthesizers placed each mask on these (on the aligned template without them). */
  landmarks: Float64Array | null;
}

type NativeLoader = ReturnType<typeof native.DataLoader.fromFolder>;

/** Corrupt samples skipped in an epoch so far (with `skipCorrupt`). */
export interface Skipped {
  epoch: number;
  count: number;
  /** The first few, each where it lives and what is wrong (`X.rec: record 6: corrupt image …`). */
  first: string[];
}

const SKIPPED_SHOWN = 5;

export class Loader {
  private tally: Skipped = { epoch: 0, count: 0, first: [] };
  /** This rank's samples in an epoch (the dataset padded to a multiple of the ranks, as the
   *  workers shard it) and how many may be skipped as corrupt. */
  private readonly allowed: number;
  private readonly samples: number;

  private constructor(
    private readonly inner: NativeLoader,
    private readonly name: string,
    images: number,
    private readonly o: ReturnType<typeof Loader.options>,
  ) {
    this.samples = Math.ceil(images / o.world);
    this.allowed = o.skipCorrupt ? Math.floor(o.maxCorruptShare * this.samples) : 0;
  }

  /** Corrupt samples skipped in the current epoch, up to the last batch handed out. */
  get skipped(): Readonly<Skipped> {
    return this.tally;
  }

  private static options(o: LoaderOptions) {
    return {
      batch: o.batch,
      seed: o.seed ?? 0,
      rank: o.rank ?? 0,
      world: o.world ?? 1,
      shuffle: o.shuffle ?? true,
      flip: o.flip ?? true,
      size: o.size ?? 112,
      prefetch: o.prefetch ?? 4,
      threads: o.threads ?? Math.max(1, os.availableParallelism() - 1),
      skipCorrupt: o.skipCorrupt ?? false,
      maxCorruptShare: o.maxCorruptShare ?? MAX_CORRUPT_SHARE,
      maskProbability: o.maskProbability ?? 0,
      maskTemplateShare: o.maskTemplateShare,
      maskColorWeights: o.maskColorWeights,
      photometric: o.photometric as Parameters<typeof native.DataLoader.fromFolder>[1]['photometric'],
    };
  }

  /** Over the images of a RecordIO dataset (path to `X.rec`, `X.idx` beside it if present). */
  static fromRecord(rec: string | RecordDataset, o: LoaderOptions): Loader {
    const ds = typeof rec === 'string' ? RecordDataset.open(rec) : rec;
    const opts = Loader.options(o);
    return new Loader(native.DataLoader.fromRecord(ds.handle, opts), ds.path, ds.length, opts);
  }

  /** Over an image folder (one sub-folder per identity), scanned or given. */
  static fromFolder(root: string | FolderDataset, o: LoaderOptions): Loader {
    const f = typeof root === 'string' ? FolderDataset.scan(root) : root;
    const opts = Loader.options(o);
    return new Loader(native.DataLoader.fromFolder(f.handle, opts), f.root, f.length, opts);
  }

  /** Counts `count` corrupt samples as skipped in `epoch` already (a resumed epoch's, from its
   *  checkpoint): `skipped` says so at once, and an `epoch(epoch, first > 0)` goes on from
   *  them, judging maxCorruptShare as if the epoch had run whole. */
  carrySkipped(epoch: number, count: number): void {
    this.tally = { epoch, count, first: [] };
  }

  /** The batches of `epoch` from batch `first` on, built in the background; the last
   *  partial batch is dropped. */
  async *epoch(epoch: number, first = 0): AsyncGenerator<Batch> {
    const n = this.inner.startEpoch(epoch, first);
    // This rank's corrupt samples in the batches before `first`, when counted (carrySkipped).
    const skippedBefore = first > 0 && this.tally.epoch === epoch ? this.tally.count : 0;
    this.tally = { epoch, count: skippedBefore, first: [] };
    for (let b = first; b < n; b++) {
      const next = await this.inner.next();
      if (next === null) return;
      this.tally.count += next.skipped.length;
      this.tally.first.push(...next.skipped.slice(0, SKIPPED_SHOWN - this.tally.first.length));
      // The workers judge the samples they saw, from `first` on; this adds the ones before.
      if (skippedBefore > 0 && this.tally.count > this.allowed) {
        const { count, first: named } = this.tally;
        const pct = (v: number) => (100 * v).toFixed(2);
        throw new Error(
          `${this.name}: ${count} of the ${this.samples} samples of epoch ${epoch} on this rank are corrupt (${pct(count / this.samples)}%, ${skippedBefore} of them before the resume), more than maxCorruptShare ${this.o.maxCorruptShare} allows (${pct(this.o.maxCorruptShare)}%); the first since the resume: ${named.join('; ')}`,
        );
      }
      yield { images: new Tensor(next.images), labels: next.labels, indices: next.indices, masked: next.masked, landmarks: next.landmarks ?? null };
    }
  }

  /** Batches per epoch (the same for every epoch). */
  batchesPerEpoch(): number {
    return this.inner.batchesPerEpoch();
  }
}
