// 1:1 verification at scale: every pair of a test set scored by blocked products in Rust;
// genuine scores kept, impostors as a histogram with an exact top, so 10⁸ impostor pairs
// need a few MB. TAR / FNMR at FMR 1e-1 … 1e-6 by sklearn's strict ROC rule, each level with
// the impostor pairs behind it.

import { native } from '../native';

export const FMR_LEVELS = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6];

export interface OperatingPoint {
  fmr: number;
  tar: number;
  fnmr: number;
  /** Scores at or above it match. */
  threshold: number;
  impostors: number;
  /** ⌊FMR · impostors⌋: below 1 the level cannot be measured on this set. */
  falseMatchesAllowed: number;
  /** The threshold comes from the exact top impostor scores (else a histogram bin). */
  exact: boolean;
}

export interface OneToOne {
  genuine: number;
  impostors: number;
  levels: OperatingPoint[];
  /** `[fmr, tar]` on a log grid, for plots. */
  curve: [number, number][];
  /** Bytes the score statistics held. */
  bytes: number;
}

export interface OneToOneOptions {
  fmrs?: number[];
  /** Histogram bins over [−1, 1] (2¹⁶: thresholds to 3·10⁻⁵ past the exact top). */
  bins?: number;
  /** Highest impostor scores kept exactly (10⁵: exact levels down to 10⁵ false matches). */
  top?: number;
}

function options(o: OneToOneOptions) {
  return { fmrs: o.fmrs ?? FMR_LEVELS, bins: o.bins ?? 1 << 16, top: o.top ?? 100_000, curveFrom: -7, perDecade: 10 };
}

const shaped = (r: ReturnType<typeof native.verifyAllVsAll>): OneToOne => ({ ...r, curve: r.curve.map(([f, t]) => [f, t] as [number, number]) });

/** Operating points from genuine and impostor similarity scores. */
export function verifyScores(genuine: Float32Array, impostors: Float32Array, o: OneToOneOptions = {}): OneToOne {
  return shaped(native.verifyScores(genuine, impostors, options(o)));
}

/** Every unordered pair of distinct images: `embeddings` `[n·dim]` L2-normalised. */
export function verifyAllVsAll(embeddings: Float32Array, labels: Int32Array, dim: number, o: OneToOneOptions = {}): OneToOne {
  return shaped(native.verifyAllVsAll(embeddings, labels, dim, options(o)));
}

/** Every (probe, gallery) pair; `paired`: probe i is a masked copy of gallery image i (that
 *  pair is left out). `galleryLabels` when the gallery is a set of its own (else `labels`). */
export function verifyCross(probe: Float32Array, gallery: Float32Array, labels: Int32Array, dim: number, paired: boolean, o: OneToOneOptions = {}, galleryLabels?: Int32Array): OneToOne {
  return shaped(native.verifyCross(probe, gallery, labels, dim, paired, options(o), galleryLabels));
}

/** The level at `fmr` (one of those asked for). */
export function at(r: OneToOne, fmr: number): OperatingPoint {
  const l = r.levels.find((x) => Math.abs(x.fmr - fmr) <= 1e-12 * fmr);
  if (l === undefined) throw new Error(`verification: no level at FMR ${fmr} (have ${r.levels.map((x) => x.fmr).join(', ')})`);
  return l;
}
