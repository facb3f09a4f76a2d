// Verification on InsightFace `.bin` pair sets (LFW, CFP-FP, AgeDB-30 and our synthetic
// held-out identities), exactly as insightface reports them: embedding(image) +
// embedding(mirrored image), L2-normalised; squared distances; 10-fold accuracy with the
// threshold (0, 0.01, …, 3.99) chosen on the other nine folds; mean ± std over folds.

import path from 'node:path';
import { native } from '../native';
import { Module } from '../nn/module';
import { IResNet } from '../models/iresnet';
import { NonFiniteTensor } from '../models/weights';
import { Tensor } from '../tensor/tensor';
import { noGrad, tidy } from '../tensor/scope';
import * as ops from '../tensor/ops';
import { Communicator } from '../parallel/comm';
import { readVerificationBin, VerificationSet } from '../data/verification-bin';
import { DrawnMask, MASK_KINDS, pairBreakdown, PairBreakdown } from './breakdown';

export interface VerificationResult {
  name: string;
  pairs: number;
  /** Mean and standard deviation of the ten test-fold accuracies. */
  accuracy: number;
  std: number;
  /** Mean of the ten chosen distance thresholds. */
  threshold: number;
  /** With the set's masks (a sidecar): the decisions grouped by the pairs' masks. */
  breakdown?: PairBreakdown;
}

/** insightface's folds: sklearn KFold(10, shuffle=False), the first n mod k folds one longer. */
function folds(n: number, k: number): [number, number][] {
  const out: [number, number][] = [];
  let start = 0;
  for (let f = 0; f < k; f++) {
    const size = Math.floor(n / k) + (f < n % k ? 1 : 0);
    out.push([start, start + size]);
    start += size;
  }
  return out;
}

const THRESHOLDS = Array.from({ length: 400 }, (_, i) => i * 0.01);

/** 10-fold accuracy of `distance < threshold` predicting `issame` (insightface's rule:
 *  the first best threshold on the nine training folds, scored on the tenth). */
export function tenFoldAccuracy(distances: ArrayLike<number>, issame: readonly boolean[], k = 10): Omit<VerificationResult, 'name' | 'pairs' | 'breakdown'> {
  const { accepted: _, ...r } = tenFold(distances, issame, k);
  return r;
}

/** `tenFoldAccuracy`, and each pair's decision by its test fold's threshold. */
function tenFold(distances: ArrayLike<number>, issame: readonly boolean[], k: number): Omit<VerificationResult, 'name' | 'pairs' | 'breakdown'> & { accepted: boolean[] } {
  const n = issame.length;
  if (distances.length !== n || n < k) throw new Error(`verification: ${distances.length} distances for ${n} pairs; need equal counts and at least ${k} pairs`);
  const correct = (th: number, from: number, to: number) => {
    let c = 0;
    for (let i = from; i < to; i++) if (distances[i] < th === issame[i]) c++;
    return c;
  };
  const accs: number[] = [];
  const chosen: number[] = [];
  const accepted = new Array<boolean>(n);
  for (const [a, b] of folds(n, k)) {
    let best = 0;
    let bestCorrect = -1;
    for (const th of THRESHOLDS) {
      const c = correct(th, 0, a) + correct(th, b, n);
      if (c > bestCorrect) [best, bestCorrect] = [th, c];
    }
    chosen.push(best);
    accs.push(correct(best, a, b) / (b - a));
    for (let i = a; i < b; i++) accepted[i] = distances[i] < best;
  }
  const mean = accs.reduce((s, v) => s + v, 0) / k;
  const std = Math.sqrt(accs.reduce((s, v) => s + (v - mean) ** 2, 0) / k);
  return { accuracy: mean, std, threshold: chosen.reduce((s, v) => s + v, 0) / k, accepted };
}

/** How evaluation probes are masked: a style of the synthesizers (`mixed` as in training,
 *  `template`, `renderer`, or `held-out`: colours training never draws) and a seed. */
export interface ProbeMasks {
  style: 'mixed' | 'template' | 'renderer' | 'held-out';
  seed: number;
}

export interface EmbedOptions {
  batch?: number;
  size?: number;
  what?: string;
  comm?: Communicator | null;
  /** Mask every image first (the same mask on the image and its mirror). */
  mask?: ProbeMasks | null;
  /** The images are masked already (a pre-masked set's probes): an MoE embeds them with its
   *  masked head, as it does the probes it masks. */
  masked?: boolean;
}

/** L2-normalised embedding(image) + embedding(mirror) of every image, `[n·D]` row-major.
 *  With a communicator the ranks split the images and share the result. */
export function embedFlipped(model: Module, images: readonly Buffer[], o: EmbedOptions = {}): Float32Array {
  return embedMasked(model, images, o).embeddings;
}

/** `embedFlipped`, and with `mask` each image's drawn mask (shared across ranks too). */
export function embedMasked(model: Module, images: readonly Buffer[], { batch = 64, size = 112, what = 'images', comm = null, mask = null, masked = false }: EmbedOptions = {}): { embeddings: Float32Array; masks: DrawnMask[] | null } {
  const [rank, world] = comm === null ? [0, 1] : [comm.rank, comm.world];
  const per = Math.ceil(images.length / world);
  const mine = images.slice(rank * per, (rank + 1) * per);
  const wasTraining = model.training;
  model.eval();
  let d = 0;
  let local = new Float32Array(0);
  // Each mask as a code (0: none, 1 + its index in MASK_CODES, −1: a kind not there),
  // gathered with the embeddings.
  const codes = new Float32Array(per);
  for (let i = 0; i < mine.length; i += batch) {
    const chunk = mine.slice(i, i + batch);
    const e = tidy(() =>
      noGrad(() => {
        const masks = mask === null ? undefined : { ...mask, first: rank * per + i };
        const decode = (flip: boolean) => {
          if (masks === undefined || flip) return native.decodeFaces([...chunk], size, flip, what, masks);
          const m = native.decodeMaskedFaces([...chunk], size, flip, what, masks);
          m.synthesizers.forEach((s, j) => {
            const c = MASK_CODES.findIndex((x) => x.synthesizer === s && x.kind === m.kinds[j]);
            codes[i + j] = s === '' ? 0 : c < 0 ? -1 : c + 1;
          });
          return m.faces;
        };
        const x = (flip: boolean) => ops.to(new Tensor(decode(flip)), model.device);
        // An MoE embeds masked probes with its masked head (the others with its default one).
        const flags = mask === null && !masked ? undefined : new Array<boolean>(chunk.length).fill(true);
        const embed = (flip: boolean) => (model instanceof IResNet ? model.forward(x(flip), flags) : model.forward(x(flip)));
        return ops.l2Normalize(ops.add(embed(false), embed(true))).toFloat32Array();
      }),
    );
    if (i === 0) [d, local] = [e.length / chunk.length, new Float32Array(per * (e.length / chunk.length))];
    local.set(e, i * d);
  }
  model.train(wasTraining);
  let [all, dim]: [Float32Array, number] = [local.subarray(0, images.length * d), d];
  let allCodes: Float32Array = codes.subarray(0, images.length);
  if (comm !== null && world > 1) {
    // Ranks past the end embedded nothing; every rank knows D from rank 0's slice.
    dim = Math.max(...comm.allGather(new Float32Array([d])));
    all = comm.allGather(d === dim ? local : new Float32Array(per * dim)).subarray(0, images.length * dim);
    if (mask !== null) allCodes = comm.allGather(codes).subarray(0, images.length);
  }
  // NaN distances all compare false and score a plausible-looking 50%. Checked after the
  // gather, so every rank refuses together.
  const bad = all.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw new NonFiniteTensor(`${what}: the model's embedding of image ${Math.floor(bad / dim)} holds ${all[bad]}: the weights (or their BatchNorm statistics) are not usable`);
  const unknown = allCodes.indexOf(-1);
  if (unknown >= 0) throw new Error(`${what}: image ${unknown}'s probe mask is of a kind the breakdown does not know (it knows ${MASK_CODES.map((m) => `${m.synthesizer}/${m.kind}`).join(', ')})`);
  return { embeddings: all, masks: mask === null ? null : Array.from(allCodes, (c) => (c === 0 ? { synthesizer: null, kind: null } : MASK_CODES[c - 1])) };
}

/** Every (synthesizer, kind) a probe can get, for the codes shared between ranks. */
const MASK_CODES: DrawnMask[] = Object.entries(MASK_KINDS).flatMap(([synthesizer, kinds]) => kinds.map((kind) => ({ synthesizer, kind })));

/** Verification accuracy of `model` on a `.bin` set (or an already read one); with `masks`
 *  (each image's, from the set's sidecar) also the decisions broken down by mask. */
export function verify(
  model: Module,
  set: string | VerificationSet,
  { name = '', comm = null as Communicator | null, batch = 64, masks = null as { source: string; masks: DrawnMask[] } | null } = {},
): VerificationResult {
  const v = typeof set === 'string' ? readVerificationBin(set) : set;
  const label = name || (typeof set === 'string' ? path.basename(set, '.bin') : 'verification');
  if (masks !== null && masks.masks.length !== v.images.length) throw new Error(`${label}: ${masks.masks.length} masks from ${masks.source} for ${v.images.length} images`);
  const e = embedFlipped(model, v.images, { batch, comm, what: label });
  const d = e.length / v.images.length;
  const dist = v.issame.map((_, i) => {
    let s = 0;
    for (let j = 0; j < d; j++) s += (e[2 * i * d + j] - e[(2 * i + 1) * d + j]) ** 2;
    return s;
  });
  const { accepted, ...r } = tenFold(dist, v.issame, 10);
  const breakdown = masks === null ? {} : { breakdown: pairBreakdown(masks.source, masks.masks, v.issame, accepted) };
  return { name: label, pairs: v.issame.length, ...r, ...breakdown };
}
