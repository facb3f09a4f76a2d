// The differentiable operations. Each runs its native forward and records itself on the
// tape; its backward rule lives in ../autograd/gradients.ts under the same name.

import { native, NativeTensor } from '../native';
import { record } from '../autograd/tape';
import { Tensor, Shape, DType } from './tensor';
import { nextSeed } from './random';
import { autocastDtype } from './autocast';

const wrap = (n: NativeTensor) => new Tensor(n);

function pair(v: number | readonly [number, number], what: string): number[] {
  const p = typeof v === 'number' ? [v, v] : [...v];
  if (!p.every((x) => Number.isInteger(x) && x >= 0)) throw new Error(`conv2d: ${what} must be non-negative integers, got ${JSON.stringify(v)}`);
  return p;
}

export interface ConvOptions {
  stride?: number | readonly [number, number];
  padding?: number | readonly [number, number];
}

/** NCHW convolution: `x [N,C,H,W]`, `w [O,C,KH,KW]`, optional `bias [O]`. */
export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null = null, { stride = 1, padding = 0 }: ConvOptions = {}): Tensor {
  const low = autocastDtype();
  if (low !== null && x.dtype === 'f32') {
    const y = cast(conv2d(cast(x, low), cast(w, low), null, { stride, padding }), 'f32');
    return bias === null ? y : addChannel(y, bias);
  }
  const [s, p] = [pair(stride, 'stride'), pair(padding, 'padding')];
  const y = wrap(native.conv2d(x.handle('conv2d'), w.handle('conv2d'), bias?.handle('conv2d') ?? null, s, p));
  return record(y, 'conv2d', [x, w, bias], { stride: s, padding: p });
}

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
}

/** Batch norm over dimension 1 of `[N,C]` or `[N,C,H,W]`. In training the running
 *  statistics are updated in place (momentum 0.1, unbiased variance, as PyTorch). */
export function batchNorm(
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  runningMean: Tensor,
  runningVar: Tensor,
  { training, momentum = 0.1, eps = 1e-5 }: BatchNormOptions,
): Tensor {
  const op = 'batchNorm';
  const [y, mean, invstd] = native
    .batchNorm(x.handle(op), weight.handle(op), bias.handle(op), runningMean.handle(op), runningVar.handle(op), training, momentum, eps)
    .map(wrap);
  return record(y, op, [x, weight, bias], { training }, [mean, invstd]);
}

/** `x` on `device` ('cpu' or 'cuda:N'); the gradient goes back to `x`'s device. */
export function to(x: Tensor, device: string): Tensor {
  if (x.device === device) return x;
  return record(wrap(x.handle('to').to(device)), 'to', [x], { device: x.device });
}

/** `x` stored as `dtype` (f32, f16, bf16; round to nearest even); the gradient is cast back. */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  return record(wrap(x.handle('cast').cast(dtype)), 'cast', [x], { dtype: x.dtype });
}

/** Per-channel PReLU: `alpha` has one slope per channel of dimension 1. */
export function prelu(x: Tensor, alpha: Tensor): Tensor {
  return record(wrap(native.prelu(x.handle('prelu'), alpha.handle('prelu'))), 'prelu', [x, alpha]);
}

/** Inverted dropout; identity when not training or `p = 0`. The mask is a function of `seed`. */
export function dropout(x: Tensor, p: number, { training = true, seed = nextSeed() } = {}): Tensor {
  if (!training || p === 0) return x;
  return record(wrap(native.dropout(x.handle('dropout'), p, seed)), 'dropout', [x], { p, seed });
}

/** 2-d product `op(a)·op(b)`, `op` transposing where asked. */
export function matmul(a: Tensor, b: Tensor, { transA = false, transB = false } = {}): Tensor {
  const y = wrap(native.matmul(a.handle('matmul'), b.handle('matmul'), transA, transB));
  return record(y, 'matmul', [a, b], { transA, transB });
}

/** `x [B,I] · w [O,I]ᵀ + bias [O]`. */
export function linear(x: Tensor, w: Tensor, bias: Tensor | null = null): Tensor {
  const low = autocastDtype();
  if (low !== null && x.dtype === 'f32') {
    const y = cast(linear(cast(x, low), cast(w, low)), 'f32');
    return bias === null ? y : addChannel(y, bias);
  }
  const y = wrap(native.linear(x.handle('linear'), w.handle('linear'), bias?.handle('linear') ?? null));
  return record(y, 'linear', [x, w, bias]);
}

export function add(a: Tensor, b: Tensor): Tensor {
  return record(wrap(native.add(a.handle('add'), b.handle('add'))), 'add', [a, b]);
}

export function mul(a: Tensor, b: Tensor): Tensor {
  return record(wrap(native.mul(a.handle('mul'), b.handle('mul'))), 'mul', [a, b]);
}

/** `x + v` with one value per channel (dimension 1) of `x`. */
export function addChannel(x: Tensor, v: Tensor): Tensor {
  return record(wrap(native.addChannel(x.handle('addChannel'), v.handle('addChannel'))), 'addChannel', [x, v]);
}

export function scale(a: Tensor, s: number): Tensor {
  return record(wrap(native.scale(a.handle('scale'), s)), 'scale', [a], { s });
}

/** Overwrites `dst` in place with `src`'s values (copied to `dst`'s device), then frees
 *  `src`, also when the copy throws; `op` names the caller in errors. Not recorded. */
export function assign(dst: Tensor, src: Tensor, op: string): void {
  try {
    native.copyInto(dst.handle(op), src.handle(op));
  } finally {
    src.dispose();
  }
}

/** A view with another shape (shares storage); one dimension may be -1. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  return record(wrap(x.handle('reshape').reshape([...shape])), 'reshape', [x]);
}

/** `x · s` with `s` a 0-d tensor read on the device (a loss scale; `s` gets no gradient). */
export function scaleBy(x: Tensor, s: Tensor): Tensor {
  return record(wrap(native.scaleBy(x.handle('scaleBy'), s.handle('scaleBy'))), 'scaleBy', [x, s]);
}

/** Keeps dimensions before `startDim`, merges the rest. */
export function flatten(x: Tensor, startDim = 1): Tensor {
  return reshape(x, [...x.shape.slice(0, startDim), -1]);
}

/** Rows `idx` of `x` along dimension 0. */
export function indexRows(x: Tensor, idx: Int32Array | readonly number[]): Tensor {
  const ix = idx instanceof Int32Array ? idx : Int32Array.from(idx);
  return record(wrap(native.indexRows(x.handle('indexRows'), ix)), 'indexRows', [x], { idx: ix, rows: x.shape[0] });
}

/** `rows` rows of zeros with row `i` of `x` added at row `idx[i]` (the inverse routing). */
export function scatterRows(x: Tensor, idx: Int32Array | readonly number[], rows: number): Tensor {
  const ix = idx instanceof Int32Array ? idx : Int32Array.from(idx);
  return record(wrap(native.scatterRows(x.handle('scatterRows'), ix, rows)), 'scatterRows', [x], { idx: ix });
}

/** Sum of all elements (0-d). */
export function sum(x: Tensor): Tensor {
  return record(wrap(native.sum(x.handle('sum'))), 'sum', [x]);
}

export function mean(x: Tensor): Tensor {
  return scale(sum(x), 1 / x.numel);
}

/** Rows of `[R, D]` divided by `max(‖row‖, eps)`. */
export function l2Normalize(x: Tensor, eps = 1e-12): Tensor {
  return record(wrap(native.l2Normalize(x.handle('l2Normalize'), eps)), 'l2Normalize', [x], { eps });
}

export function logSoftmax(x: Tensor): Tensor {
  return record(wrap(native.logSoftmax(x.handle('logSoftmax'))), 'logSoftmax', [x]);
}

export interface Margin {
  /** Scale of the logits. */
  s: number;
  /** Additive angular margin (ArcFace: 0.5). */
  mArc: number;
  /** Additive cosine margin (CosFace: 0.4 as arcface_torch's WebFace42M recipes, 0.35 in the paper). */
  mCos: number;
}

/** Combined-margin logits from cosines `[R, K]` (clamped to [−1, 1]): `s·cos θ` off target,
 *  `s·(cos(θ + mArc) − mCos)` on each row's target `labels[i]`. */
export function marginLogits(cos: Tensor, labels: Int32Array | readonly number[], m: Margin): Tensor {
  const lab = labels instanceof Int32Array ? labels : Int32Array.from(labels);
  const y = wrap(native.marginLogits(cos.handle('marginLogits'), lab, m.s, m.mArc, m.mCos));
  return record(y, 'marginLogits', [cos], { labels: lab, ...m });
}

/** A scalar loss computed outside the tape together with its gradients (a fused native
 *  step such as the sharded classifier's): `value` is 0-d, `grads[i]` is d value /
 *  d `inputs[i]`. The tape scales them by the upstream gradient. Takes ownership of
 *  `value` and `grads`. */
export function fusedLoss(value: Tensor, inputs: Tensor[], grads: Tensor[]): Tensor {
  if (value.numel !== 1) throw new Error(`fusedLoss: the value must be a single element, got [${value.shape.join(', ')}]`);
  inputs.forEach((x, i) => {
    if (x.shape.join() !== grads[i]?.shape.join()) throw new Error(`fusedLoss: input ${i} is [${x.shape.join(', ')}], its gradient [${grads[i]?.shape.join(', ') ?? 'missing'}]`);
  });
  return record(value, 'fusedLoss', inputs, {}, grads);
}

/** Mean cross-entropy of the rows of `logits [R, K]` against integer `labels` in [0, K). */
export function crossEntropy(logits: Tensor, labels: Int32Array | readonly number[]): Tensor {
  const lab = labels instanceof Int32Array ? labels : Int32Array.from(labels);
  const [loss, logp] = native.crossEntropy(logits.handle('crossEntropy'), lab).map(wrap);
  return record(loss, 'crossEntropy', [logits], { labels: lab }, [logp]);
}
