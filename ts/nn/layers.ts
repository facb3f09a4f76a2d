// The layers IResNets are built from. Default inits follow PyTorch's (Kaiming-uniform for
// conv/linear, BN weight 1 bias 0, PReLU 0.25); model files may re-initialise.

import { Tensor, full, zeros, ones } from '../tensor/tensor';
import { randUniform } from '../tensor/random';
import * as ops from '../tensor/ops';
import { Module } from './module';
import { isRecomputing } from '../autograd/recompute';

function kaimingUniform(shape: number[], fanIn: number): Tensor {
  const bound = 1 / Math.sqrt(fanIn);
  return randUniform(shape, { low: -bound, high: bound });
}

export interface Conv2dOptions extends ops.ConvOptions {
  bias?: boolean;
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernel: number,
    readonly options: Conv2dOptions = {},
  ) {
    super();
    const fanIn = inChannels * kernel * kernel;
    this.weight = this.param('weight', kaimingUniform([outChannels, inChannels, kernel, kernel], fanIn));
    this.bias = options.bias ? this.param('bias', kaimingUniform([outChannels], fanIn)) : null;
  }
  forward(x: Tensor): Tensor {
    return ops.conv2d(x, this.weight, this.bias, this.options);
  }
}

/** BatchNorm over dimension 1: BatchNorm1d for `[N,C]`, BatchNorm2d for `[N,C,H,W]`. */
export class BatchNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  /** Training forwards so far (PyTorch's `num_batches_tracked`, saved in checkpoints). */
  numBatchesTracked = 0;
  constructor(
    readonly channels: number,
    readonly options: { eps?: number; momentum?: number } = {},
  ) {
    super();
    this.weight = this.param('weight', ones([channels]));
    this.bias = this.param('bias', zeros([channels]));
    this.runningMean = this.buffer('running_mean', zeros([channels]));
    this.runningVar = this.buffer('running_var', ones([channels]));
  }
  forward(x: Tensor): Tensor {
    // A checkpoint recompute sees the batch a second time: same statistics, no update.
    const again = isRecomputing();
    if (this.training && !again) this.numBatchesTracked++;
    const options = again ? { ...this.options, momentum: 0 } : this.options;
    return ops.batchNorm(x, this.weight, this.bias, this.runningMean, this.runningVar, { training: this.training, ...options });
  }
}

export class PReLU extends Module {
  readonly weight: Tensor;
  constructor(readonly channels: number, init = 0.25) {
    super();
    this.weight = this.param('weight', full([channels], init));
  }
  forward(x: Tensor): Tensor {
    return ops.prelu(x, this.weight);
  }
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    { bias = true } = {},
  ) {
    super();
    this.weight = this.param('weight', kaimingUniform([outFeatures, inFeatures], inFeatures));
    this.bias = bias ? this.param('bias', kaimingUniform([outFeatures], inFeatures)) : null;
  }
  forward(x: Tensor): Tensor {
    return ops.linear(x, this.weight, this.bias);
  }
}

export class Dropout extends Module {
  constructor(readonly p: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    return ops.dropout(x, this.p, { training: this.training });
  }
}

export class Flatten extends Module {
  forward(x: Tensor): Tensor {
    return ops.flatten(x, 1);
  }
}

/** Children applied in order, named '0', '1', … as torch.nn.Sequential. */
export class Sequential extends Module {
  readonly layers: Module[];
  constructor(...layers: Module[]) {
    super();
    this.layers = layers.map((m, i) => this.child(String(i), m));
  }
  forward(x: Tensor): Tensor {
    return this.layers.reduce((h, m) => m.forward(h), x);
  }
}
