// Margin-based softmax heads (arcface_torch's combined margin): embeddings and class centres
// L2-normalised, cosines scaled and margined on the target, cross-entropy. The single-process
// classifier; the sharded (model-parallel) one is built on the same margin op.

import { Tensor } from '../tensor/tensor';
import { randn } from '../tensor/random';
import * as ops from '../tensor/ops';
import { Module } from '../nn/module';

// Frozen: configs hand these very objects out, and one run must not change another's margin.
export const COSFACE: Readonly<ops.Margin> = Object.freeze({ s: 64, mArc: 0, mCos: 0.4 });
export const ARCFACE: Readonly<ops.Margin> = Object.freeze({ s: 64, mArc: 0.5, mCos: 0 });
/** Standard deviation of the class centres' N(0, σ²) initialisation (arcface_torch's partial FC). */
export const CENTRE_STD = 0.01;

/** Mean margin-softmax cross-entropy of `embeddings [B, D]` against every class centre of
 *  `weight [C, D]`, in tensor ops (so on whichever device both live). */
export function marginSoftmaxLoss(embeddings: Tensor, weight: Tensor, labels: Int32Array | readonly number[], margin: ops.Margin): Tensor {
  const cos = ops.matmul(ops.l2Normalize(embeddings), ops.l2Normalize(weight), { transB: true });
  return ops.crossEntropy(ops.marginLogits(cos, labels, margin), labels);
}

export class MarginSoftmax extends Module {
  /** Class centres `[classes, embedding]`, N(0, CENTRE_STD²). */
  readonly weight: Tensor;

  constructor(
    readonly embedding: number,
    readonly classes: number,
    readonly margin: ops.Margin = COSFACE,
  ) {
    super();
    this.weight = this.param('weight', randn([classes, embedding], { std: CENTRE_STD }));
  }

  /** The cosines of every embedding with every class centre, `[B, classes]`. */
  cosines(embeddings: Tensor): Tensor {
    return ops.matmul(ops.l2Normalize(embeddings), ops.l2Normalize(this.weight), { transB: true });
  }

  /** The cosines (the loss needs labels: `loss(embeddings, labels)`). */
  forward(embeddings: Tensor): Tensor {
    return this.cosines(embeddings);
  }

  /** Mean margin-softmax cross-entropy of `embeddings [B, D]` against `labels`. */
  loss(embeddings: Tensor, labels: Int32Array | readonly number[]): Tensor {
    return marginSoftmaxLoss(embeddings, this.weight, labels, this.margin);
  }
}
