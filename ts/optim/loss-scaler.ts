// Dynamic loss scaling for fp16 training, as torch.cuda.amp.GradScaler: the loss is scaled
// up before backward so small fp16 gradients do not flush to zero; the optimiser's gate
// unscales them (with the clipping) inside the update; a step whose gradients overflowed
// (inf/NaN) is skipped and the scale backed off; after `growthInterval` clean steps in a
// row the scale grows. The scale and its counters live on the training device and are
// updated there (torch's _amp_update_scale_), so a step never waits for the host to decide.

import { native } from '../native';
import { Tensor, full } from '../tensor/tensor';
import { keep } from '../tensor/scope';
import * as ops from '../tensor/ops';
import { gradientGate } from './clip';

/** GradScaler's initial scale: large, so the first steps overflow and back it off to fit. */
export const DEFAULT_LOSS_SCALE = 2 ** 16;

export interface LossScalerOptions {
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
}

export class LossScaler {
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  /** The scale, the clean steps since the last growth or overflow, the overflowed (skipped)
   *  steps: 0-d tensors on the device. */
  private readonly state: [Tensor, Tensor, Tensor];

  constructor({ initScale = DEFAULT_LOSS_SCALE, growthFactor = 2, backoffFactor = 0.5, growthInterval = 100 }: LossScalerOptions = {}, device = 'cpu') {
    if (!(initScale > 0 && growthFactor > 1 && backoffFactor > 0 && backoffFactor < 1 && Number.isInteger(growthInterval) && growthInterval >= 1)) {
      throw new Error(`LossScaler: need initScale > 0, growthFactor > 1, 0 < backoffFactor < 1, integer growthInterval ≥ 1; got ${initScale}, ${growthFactor}, ${backoffFactor}, ${growthInterval}`);
    }
    this.growthFactor = growthFactor;
    this.backoffFactor = backoffFactor;
    this.growthInterval = growthInterval;
    this.state = [initScale, 0, 0].map((v) => keep(full([], v, device))) as [Tensor, Tensor, Tensor];
  }

  /** The current scale (read from the device). */
  get scale(): number {
    return this.state[0].item();
  }

  /** Clean steps since the last growth or overflow (read from the device). */
  get goodSteps(): number {
    return this.state[1].item();
  }

  /** Steps skipped because their gradients overflowed (read from the device). */
  get overflowSteps(): number {
    return this.state[2].item();
  }

  /** Takes a saved state (a resumed checkpoint's). */
  restore(scale: number, goodSteps: number, overflowSteps: number): void {
    [scale, goodSteps, overflowSteps].forEach((v, i) => ops.assign(this.state[i], full([], v), 'LossScaler.restore'));
  }

  /** A copy of the current scale, on the device (what a step's gradients carry). */
  scaleNow(): Tensor {
    return ops.scale(this.state[0], 1);
  }

  /** The loss times the current scale (backward this one). */
  scaleLoss(loss: Tensor): Tensor {
    return ops.scaleBy(loss, this.state[0]);
  }

  /** The optimiser's gate for the scaled gradients of squared norm `sumsq`: the scale
   *  undone, the norm clipped to `maxNorm`; NaN when they overflowed (see gradientGate). */
  gate(sumsq: Tensor, maxNorm = Infinity): Tensor {
    return gradientGate(sumsq, { maxNorm, scale: this.state[0] });
  }

  /** After the step gated by `gate` (which the optimiser skipped if it is not finite):
   *  back off and count an overflow, or count a clean step and grow after
   *  `growthInterval` of them. On the device. */
  update(gate: Tensor): void {
    const [s, g, o] = this.state.map((t) => t.handle('LossScaler.update'));
    native.lossScaleUpdate(gate.handle('LossScaler.update'), s, g, o, this.growthFactor, this.backoffFactor, this.growthInterval);
  }

  dispose(): void {
    this.state.forEach((t) => t.dispose());
  }
}
