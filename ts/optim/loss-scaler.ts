// Dynamic loss scaling for fp16 training, as torch.cuda.amp.GradScaler: the loss is scaled
// up before backward so small fp16 gradients do not flush to zero; the optimiser's gate
// unscales them (with the clipping) inside the update; a step whose gradients overflowed
// (inf/NaN) is skipped and the scale backed off; after `growthInterval` clean steps in a
// row the scale grows.

import { Tensor } from '../tensor/tensor';
import * as ops from '../tensor/ops';
import { gradientGate } from './clip';

export interface LossScalerOptions {
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
}

export class LossScaler {
  scale: number;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  /** Clean steps since the last growth or overflow. */
  goodSteps = 0;
  /** Steps skipped because their gradients overflowed. */
  overflowSteps = 0;

  constructor({ initScale = 2 ** 16, growthFactor = 2, backoffFactor = 0.5, growthInterval = 100 }: LossScalerOptions = {}) {
    if (!(initScale > 0 && growthFactor > 1 && backoffFactor > 0 && backoffFactor < 1 && Number.isInteger(growthInterval) && growthInterval >= 1)) {
      throw new Error(`LossScaler: need initScale > 0, growthFactor > 1, 0 < backoffFactor < 1, integer growthInterval ≥ 1; got ${initScale}, ${growthFactor}, ${backoffFactor}, ${growthInterval}`);
    }
    this.scale = initScale;
    this.growthFactor = growthFactor;
    this.backoffFactor = backoffFactor;
    this.growthInterval = growthInterval;
  }

  /** The loss times the current scale (backward this one). */
  scaleLoss(loss: Tensor): Tensor {
    return ops.scale(loss, this.scale);
  }

  /** The optimiser's gate for the scaled gradients of squared norm `sumsq`: the scale
   *  undone, the norm clipped to `maxNorm`; NaN when they overflowed (see gradientGate). */
  gate(sumsq: Tensor, maxNorm = Infinity): Tensor {
    return gradientGate(sumsq, { maxNorm, lossScale: this.scale });
  }

  /** Runs `apply` (the optimiser steps) unless the gradients overflowed (`finite` false),
   *  then updates the scale. Returns whether the step was applied. */
  update(finite: boolean, apply: () => void): boolean {
    if (!finite) {
      this.scale *= this.backoffFactor;
      this.goodSteps = 0;
      this.overflowSteps++;
      return false;
    }
    apply();
    if (++this.goodSteps === this.growthInterval) {
      this.scale *= this.growthFactor;
      this.goodSteps = 0;
    }
    return true;
  }
}
