// Exact BatchNorm folding of an IResNet (DESIGN.md "BN folding"), for inference.
//
// Output side (conv → BN): W' = W·g per output channel, b' = β − μ·g, with g = γ/√(σ²+ε).
// Input side (BN → conv): BN(x) = a·(x + t) with a = γ/√(σ²+ε), t = β/a − μ. A zero-padded
// conv of BN(x) is then the zero-padded conv, with weights scaled by a per input channel, of
// x + t: padding stays exact, at the cost of one per-channel add ahead of the block. The
// head's BN2d → flatten → fc folds into the fc exactly (no padding there).

import { Tensor, tensor } from '../tensor/tensor';
import * as ops from '../tensor/ops';
import { Module } from '../nn/module';
import { BatchNorm, Conv2d, Linear, PReLU, Sequential } from '../nn/layers';
import { IBasicBlock, IResNet, IResNetConfig } from './iresnet';

interface Affine {
  /** per-channel scale γ/√(σ²+ε) */
  a: Float32Array;
  /** per-channel offset β − μ·a */
  c: Float32Array;
}

function affine(bn: BatchNorm): Affine {
  const eps = bn.options.eps ?? 1e-5;
  const [g, b, m, v] = [bn.weight, bn.bias, bn.runningMean, bn.runningVar].map((t) => t.toFloat32Array());
  const a = g.map((gi, i) => gi / Math.sqrt(v[i] + eps));
  return { a, c: b.map((bi, i) => bi - m[i] * a[i]) };
}

function set(t: Tensor, values: Float32Array): void {
  ops.assign(t, tensor(values, t.shape), 'fold');
}

/** `W [O, …]` scaled by `s[o]` per output row. */
function scaleRows(w: Float32Array, s: Float32Array): Float32Array {
  const per = w.length / s.length;
  return w.map((v, i) => v * s[Math.floor(i / per)]);
}

/** `W [O, C, …]` scaled by `s[c]` per input channel. */
function scaleInputs(w: Float32Array, rows: number, s: Float32Array): Float32Array {
  const perRow = w.length / rows;
  const perChannel = perRow / s.length;
  return w.map((v, i) => v * s[Math.floor((i % perRow) / perChannel)]);
}

/** A conv (no bias) followed by a BN, as one conv with bias. */
function convBn(conv: Conv2d, bn: BatchNorm, inputScale?: Float32Array): Conv2d {
  const { a, c } = affine(bn);
  let w = conv.weight.toFloat32Array();
  if (inputScale) w = scaleInputs(w, conv.outChannels, inputScale);
  const out = new Conv2d(conv.inChannels, conv.outChannels, conv.kernel, { ...conv.options, bias: true });
  set(out.weight, scaleRows(w, a));
  set(out.bias!, c);
  return out;
}

export class FoldedBlock extends Module {
  readonly shift: Tensor;
  readonly conv1: Conv2d;
  readonly prelu: PReLU;
  readonly conv2: Conv2d;
  readonly downsample: Sequential | null;

  constructor(b: IBasicBlock, where: string) {
    super();
    const { a, c } = affine(b.bn1);
    const zero = a.findIndex((v) => Math.abs(v) < 1e-12);
    if (zero >= 0) throw new Error(`fold: ${where}.bn1 scales channel ${zero} by 0; its padded conv cannot be folded exactly`);
    this.shift = this.param('shift', tensor(c.map((ci, i) => ci / a[i]), [a.length]));
    this.conv1 = this.child('conv1', convBn(b.conv1, b.bn2, a));
    this.prelu = this.child('prelu', new PReLU(b.prelu.channels));
    set(this.prelu.weight, b.prelu.weight.toFloat32Array());
    this.conv2 = this.child('conv2', convBn(b.conv2, b.bn3));
    const ds = b.downsample?.layers as [Conv2d, BatchNorm] | undefined;
    this.downsample = ds ? this.child('downsample', new Sequential(convBn(ds[0], ds[1]))) : null;
  }

  forward(x: Tensor): Tensor {
    const out = this.conv2.forward(this.prelu.forward(this.conv1.forward(ops.addChannel(x, this.shift))));
    return ops.add(out, this.downsample ? this.downsample.forward(x) : x);
  }
}

/** An IResNet with every BatchNorm folded away: same embeddings in evaluation mode. */
export class FoldedIResNet extends Module {
  readonly config: IResNetConfig;
  readonly conv1: Conv2d;
  readonly prelu: PReLU;
  readonly stages: Sequential[];
  readonly fc: Linear;

  constructor(m: IResNet) {
    super();
    this.config = m.config;
    this.conv1 = this.child('conv1', convBn(m.conv1, m.bn1));
    this.prelu = this.child('prelu', new PReLU(m.prelu.channels));
    set(this.prelu.weight, m.prelu.weight.toFloat32Array());
    this.stages = m.stages.map((stage, i) =>
      this.child(`layer${i + 1}`, new Sequential(...(stage.layers as IBasicBlock[]).map((b, j) => new FoldedBlock(b, `layer${i + 1}.${j}`)))),
    );
    // Head: fc(flatten(bn2(h))) with bn2 folded into the fc's inputs, then `features` into its outputs.
    const { fc, bn2, features } = m.head;
    const inner = affine(bn2);
    const w = scaleInputs(fc.weight.toFloat32Array(), fc.outFeatures, inner.a);
    const w0 = fc.weight.toFloat32Array();
    const b0 = fc.bias!.toFloat32Array();
    const per = fc.inFeatures / inner.c.length;
    const b = b0.map((bo, o) => {
      let s = bo;
      for (let i = 0; i < fc.inFeatures; i++) s += w0[o * fc.inFeatures + i] * inner.c[Math.floor(i / per)];
      return s;
    });
    const outer = affine(features);
    this.fc = this.child('fc', new Linear(fc.inFeatures, fc.outFeatures));
    set(this.fc.weight, scaleRows(w, outer.a));
    set(this.fc.bias!, b.map((v, o) => v * outer.a[o] + outer.c[o]));
  }

  forward(x: Tensor): Tensor {
    const s = this.config.inputSize;
    if (x.shape.length !== 4 || x.shape[1] !== 3 || x.shape[2] !== s || x.shape[3] !== s) {
      throw new Error(`FoldedIResNet: expected input [N, 3, ${s}, ${s}], got [${x.shape.join(', ')}]`);
    }
    const h = this.stages.reduce((a, stage) => stage.forward(a), this.prelu.forward(this.conv1.forward(x)));
    return this.fc.forward(ops.flatten(h));
  }
}

/** Folds every BN of `model` (using its running statistics) into its convs and fc. The
 *  MoE is refused: the report folded only its plain single-head submission. */
export function foldBatchNorm(model: IResNet): FoldedIResNet {
  if (model.config.moe) throw new Error("foldBatchNorm: an MoE model's two heads are not folded; export it unfolded");
  return new FoldedIResNet(model);
}
