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

export interface VerificationResult {
  name: string;
  pairs: number;
  /** Mean and standard deviation of the ten test-fold accuracies. */
  accuracy: number;
  std: number;
  /** Mean of the ten chosen distance thresholds. */
  threshold: number;
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
export function tenFoldAccuracy(distances: ArrayLike<number>, issame: readonly boolean[], k = 10): Omit<VerificationResult, 'name' | 'pairs'> {
  const n = issame.length;
  if (distances.length !== n || n < k) throw new Error(`verification: ${distances.length} distances for ${n} pairs; need equal counts and at least ${k} pairs`);
  const correct = (th: number, from: number, to: number) => {
    let c = 0;
    for (let i = from; i < to; i++) if (distances[i] < th === issame[i]) c++;
    return c;
  };
  const accs: number[] = [];
  const chosen: number[] = [];
  for (const [a, b] of folds(n, k)) {
    let best = 0;
    let bestCorrect = -1;
    for (const th of THRESHOLDS) {
      const c = correct(th, 0, a) + correct(th, b, n);
      if (c > bestCorrect) [best, bestCorrect] = [th, c];
    }
    chosen.push(best);
    accs.push(correct(best, a, b) / (b - a));
  }
  const mean = accs.reduce((s, v) => s + v, 0) / k;
  const std = Math.sqrt(accs.reduce((s, v) => s + (v - mean) ** 2, 0) / k);
  return { accuracy: mean, std, threshold: chosen.reduce((s, v) => s + v, 0) / k };
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
}

/** L2-normalised embedding(image) + embedding(mirror) of every image, `[n·D]` row-major.
 *  With a communicator the ranks split the images and share the result. */
export function embedFlipped(model: Module, images: readonly Buffer[], { batch = 64, size = 112, what = 'images', comm = null, mask = null }: EmbedOptions = {}): Float32Array {
  const [rank, world] = comm === null ? [0, 1] : [comm.rank, comm.world];
  const per = Math.ceil(images.length / world);
  const mine = images.slice(rank * per, (rank + 1) * per);
  const wasTraining = model.training;
  model.eval();
  let d = 0;
  let local = new Float32Array(0);
  for (let i = 0; i < mine.length; i += batch) {
    const chunk = mine.slice(i, i + batch);
    const e = tidy(() =>
      noGrad(() => {
        const masks = mask === null ? undefined : { ...mask, first: rank * per + i };
        const x = (flip: boolean) => ops.to(new Tensor(native.decodeFaces([...chunk], size, flip, what, masks)), model.device);
        // An MoE embeds masked probes with its masked head (the others with its default one).
        const flags = mask === null ? undefined : new Array<boolean>(chunk.length).fill(true);
        const embed = (flip: boolean) => (model instanceof IResNet ? model.forward(x(flip), flags) : model.forward(x(flip)));
        return ops.l2Normalize(ops.add(embed(false), embed(true))).toFloat32Array();
      }),
    );
    if (i === 0) [d, local] = [e.length / chunk.length, new Float32Array(per * (e.length / chunk.length))];
    local.set(e, i * d);
  }
  model.train(wasTraining);
  let [all, dim]: [Float32Array, number] = [local.subarray(0, images.length * d), d];
  if (comm !== null && world > 1) {
    // Ranks past the end embedded nothing; every rank knows D from rank 0's slice.
    dim = Math.max(...comm.allGather(new Float32Array([d])));
    all = comm.allGather(d === dim ? local : new Float32Array(per * dim)).subarray(0, images.length * dim);
  }
  // NaN distances all compare false and score a plausible-looking 50%. Checked after the
  // gather, so every rank refuses together.
  const bad = all.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw new NonFiniteTensor(`${what}: the model's embedding of image ${Math.floor(bad / dim)} holds ${all[bad]}: the weights (or their BatchNorm statistics) are not usable`);
  return all;
}

/** Verification accuracy of `model` on a `.bin` set (or an already read one). */
export function verify(model: Module, set: string | VerificationSet, { name = '', comm = null as Communicator | null, batch = 64 } = {}): VerificationResult {
  const v = typeof set === 'string' ? readVerificationBin(set) : set;
  const label = name || (typeof set === 'string' ? path.basename(set, '.bin') : 'verification');
  const e = embedFlipped(model, v.images, { batch, comm, what: label });
  const d = e.length / v.images.length;
  const dist = v.issame.map((_, i) => {
    let s = 0;
    for (let j = 0; j < d; j++) s += (e[2 * i * d + j] - e[(2 * i + 1) * d + j]) ** 2;
    return s;
  });
  return { name: label, pairs: v.issame.length, ...tenFoldAccuracy(dist, v.issame) };
}
