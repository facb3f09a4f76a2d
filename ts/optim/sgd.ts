// torch.optim.SGD with momentum and L2 weight decay: one native call updates every
// parameter (one fused kernel launch on a GPU).

import { native } from '../native';
import { Tensor, zeros } from '../tensor/tensor';
import { keep } from '../tensor/scope';

export interface SGDOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
}

export class SGD {
  lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  /** Momentum buffers, one per parameter (saved with training checkpoints). */
  readonly buffers: Tensor[];

  constructor(
    readonly params: Tensor[],
    { lr, momentum = 0, weightDecay = 0 }: SGDOptions,
  ) {
    this.lr = lr;
    this.momentum = momentum;
    this.weightDecay = weightDecay;
    this.buffers = params.map((p) => keep(zeros(p.shape, p.device)));
  }

  /** Updates every parameter that has a gradient. With a `gate` (0-d, on the parameters'
   *  device; see gradientGate) the gradients are multiplied by it, and a gate that is not
   *  finite leaves every parameter and buffer as it was. */
  step(gate: Tensor | null = null): void {
    const live = this.params.map((p, i) => ({ p, g: p.grad, b: this.buffers[i] })).filter((e) => e.g !== null);
    native.sgdStepAll(
      live.map((e) => e.p.handle('sgd')),
      live.map((e) => (e.g as Tensor).handle('sgd')),
      live.map((e) => e.b.handle('sgd')),
      this.lr,
      this.momentum,
      this.weightDecay,
      gate?.handle('sgd') ?? null,
    );
  }

  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  dispose(): void {
    this.buffers.forEach((b) => b.dispose());
  }
}
