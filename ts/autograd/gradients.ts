// Every backward rule, one per recorded op: given the node and the gradient of its output,
// return the gradient of each input (null where none). Composite ops (mean, flatten) have
// none of their own. A rule may hand the upstream gradient `g` itself to at most one input.

import { native, NativeTensor } from '../native';
import { Tensor } from '../tensor/tensor';
import { enableGrad, tidy } from '../tensor/scope';
import { withRandomState } from '../tensor/random';
import { autocast, LowPrecision } from '../tensor/autocast';
import type { Node } from './node';
import { backward } from './tape';
import { recomputing } from './recompute';

type Rule = (n: Node, g: Tensor) => (Tensor | null)[];

const t = (n: NativeTensor): Tensor => new Tensor(n);
const input = (n: Node, i: number): NativeTensor => n.inputs[i]!.handle(`${n.op} backward`);
const saved = (n: Node, i: number): NativeTensor => n.owned[i].handle(`${n.op} backward`);
const wants = (n: Node, i: number): boolean => n.inputs[i]?.requiresGrad === true;

export const GRADIENTS = {
  conv2d(n, g) {
    const { stride, padding } = n.attrs as { stride: number[]; padding: number[] };
    const [x, w] = [n.inputs[0]!, n.inputs[1]!];
    const gy = g.handle('conv2d backward');
    return [
      wants(n, 0) ? t(native.conv2dBackwardInput(gy, input(n, 1), [...x.shape], stride, padding)) : null,
      wants(n, 1) ? t(native.conv2dBackwardWeight(gy, input(n, 0), [...w.shape], stride, padding)) : null,
      wants(n, 2) ? t(native.channelSum(gy)) : null,
    ];
  },
  batchNorm(n, g) {
    const res = native.batchNormBackward(g.handle('batchNorm backward'), input(n, 0), input(n, 1), saved(n, 0), saved(n, 1), n.attrs.training as boolean);
    return res.map(t);
  },
  to(n, g) {
    return [t(g.handle('to backward').to(n.attrs.device as string))];
  },
  cast(n, g) {
    return [t(g.handle('cast backward').cast(n.attrs.dtype as string))];
  },
  prelu(n, g) {
    return native.preluBackward(g.handle('prelu backward'), input(n, 0), input(n, 1)).map(t);
  },
  dropout(n, g) {
    return [t(native.dropout(g.handle('dropout backward'), n.attrs.p as number, n.attrs.seed as number))];
  },
  matmul(n, g) {
    // C = op(A)·op(B): dA = g·op(B)ᵀ (stored transposed if A was), dB = op(A)ᵀ·g likewise.
    const { transA, transB } = n.attrs as { transA: boolean; transB: boolean };
    const [a, b, gy] = [input(n, 0), input(n, 1), g.handle('matmul backward')];
    return [
      wants(n, 0) ? t(transA ? native.matmul(b, gy, transB, true) : native.matmul(gy, b, false, !transB)) : null,
      wants(n, 1) ? t(transB ? native.matmul(gy, a, true, transA) : native.matmul(a, gy, !transA, false)) : null,
    ];
  },
  linear(n, g) {
    const gy = g.handle('linear backward');
    return [
      wants(n, 0) ? t(native.matmul(gy, input(n, 1), false, false)) : null,
      wants(n, 1) ? t(native.matmul(gy, input(n, 0), true, false)) : null,
      wants(n, 2) ? t(native.channelSum(gy)) : null,
    ];
  },
  add(_n, g) {
    return [g, t(native.scale(g.handle('add backward'), 1))];
  },
  mul(n, g) {
    const gy = g.handle('mul backward');
    return [wants(n, 0) ? t(native.mul(gy, input(n, 1))) : null, wants(n, 1) ? t(native.mul(gy, input(n, 0))) : null];
  },
  addChannel(n, g) {
    return [g, wants(n, 1) ? t(native.channelSum(g.handle('addChannel backward'))) : null];
  },
  scale(n, g) {
    return [t(native.scale(g.handle('scale backward'), n.attrs.s as number))];
  },
  scaleBy(n, g) {
    return [t(native.scaleBy(g.handle('scaleBy backward'), input(n, 1))), null];
  },
  reshape(n, g) {
    return [t(g.handle('reshape backward').reshape([...n.inputs[0]!.shape]))];
  },
  indexRows(n, g) {
    return [t(native.scatterRows(g.handle('indexRows backward'), n.attrs.idx as Int32Array, n.attrs.rows as number))];
  },
  scatterRows(n, g) {
    return [t(native.indexRows(g.handle('scatterRows backward'), n.attrs.idx as Int32Array))];
  },
  sum(n, g) {
    return [t(native.expandScalar(g.handle('sum backward'), [...n.inputs[0]!.shape], 1))];
  },
  l2Normalize(n, g) {
    return [t(native.l2NormalizeBackward(g.handle('l2Normalize backward'), input(n, 0), n.attrs.eps as number))];
  },
  logSoftmax(n, g) {
    return [t(native.logSoftmaxBackward(g.handle('logSoftmax backward'), n.output.handle('logSoftmax backward')))];
  },
  marginLogits(n, g) {
    const { labels, s, mArc } = n.attrs as { labels: Int32Array; s: number; mArc: number };
    return [t(native.marginLogitsBackward(g.handle('marginLogits backward'), input(n, 0), labels, s, mArc))];
  },
  checkpoint(n, g) {
    const { fn, seeds, precision } = n.attrs as { fn: (x: Tensor) => Tensor; seeds: number; precision: LowPrecision | null };
    const x = n.inputs[0]!;
    // The forward again, recorded this time, on a view of the input that collects its
    // gradient; the parameters' gradients accumulate as the nested backward reaches them.
    const gx = tidy(() =>
      enableGrad(() =>
        withRandomState(seeds, () =>
          recomputing(() => autocast(precision, () => {
            const xr = new Tensor(x.handle('checkpoint backward').reshape([...x.shape]));
            xr.requiresGrad = x.requiresGrad;
            const y = fn(xr);
            if (y.requiresGrad) backward(y, g);
            const grad = xr.grad; // taken off the view, which tidy disposes with its gradient
            xr.grad = null;
            return grad;
          })),
        ),
      ),
    );
    return [gx, ...n.inputs.slice(1).map(() => null)];
  },
  fusedLoss(n, g) {
    const gh = g.handle('fusedLoss backward');
    // On the CPU a factor of 1 (the loss itself differentiated; free to read there) passes a
    // view of the gradient, not a copy of a shard; any other factor is multiplied in, unread.
    const view = g.device === 'cpu' && g.item() === 1;
    const pass = (h: NativeTensor) => (view ? h.reshape(h.shape) : native.scaleBy(h, gh));
    return n.owned.map((gr, i) => (wants(n, i) ? t(pass(gr.handle('fusedLoss backward'))) : null));
  },
  crossEntropy(n, g) {
    return [t(native.crossEntropyBackward(saved(n, 0), n.attrs.labels as Int32Array, g.handle('crossEntropy backward')))];
  },
} satisfies Record<string, Rule>;

export type OpName = keyof typeof GRADIENTS;
