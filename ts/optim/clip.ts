// Gradient-norm clipping (torch.nn.utils.clip_grad_norm_) and the optimiser's gates: a
// training step never reads the norm back; it folds the clip coefficient (and an f16 loss scale)
// into one 0-d factor the SGD kernel multiplies the gradients by, on their device, and a
// factor that is not finite makes the step change nothing.

import { native } from '../native';
import { Tensor, zeros } from '../tensor/tensor';
import { keep, noGrad, tidy } from '../tensor/scope';
import * as ops from '../tensor/ops';
import type { Communicator } from '../parallel/comm';
import type { LossScaler } from './loss-scaler';

/** Σ‖g‖² over the gradients of `params` (those that have one) as a 0-d tensor on `device`
 *  (where they live; partial sums from other devices are moved there). Nothing is read
 *  back. */
export function gradSquaredNorm(params: Tensor[], device: string): Tensor {
  const grads = params.flatMap((p) => (p.grad === null ? [] : [p.grad]));
  return tidy(() =>
    noGrad(() => grads.map((g) => ops.to(new Tensor(native.sumSquares(g.handle('gradSquaredNorm'))), device)).reduce((a, b) => ops.add(a, b), zeros([], device))),
  );
}

export interface GateOptions {
  /** Clip the (unscaled) gradient norm to this (Infinity: no clipping). */
  maxNorm?: number;
  /** The loss scale the gradients carry (f16 dynamic loss scaling), 0-d on their device. */
  scale?: Tensor;
}

/** The factor the optimiser multiplies gradients of squared norm `sumsq` by: 1/scale
 *  times torch's clip coefficient min(1, maxNorm / (‖g‖/scale + 1e-6)); NaN when the norm
 *  is not finite. 0-d, on `sumsq`'s device. */
export function gradientGate(sumsq: Tensor, { maxNorm = Infinity, scale }: GateOptions = {}): Tensor {
  return new Tensor(native.clipGate(sumsq.handle('gradientGate'), scale?.handle('gradientGate') ?? null, maxNorm));
}

export interface StepGates {
  /** The backbone's gate: unscaled (f16) and clipped. */
  backbone: Tensor;
  /** The classifier's gate: unscaled, not clipped. */
  head: Tensor;
  /** Σ‖g‖² of the backbone's (scaled) gradients; NaN when the classifier's are not finite. */
  sumsq: Tensor;
}

/** One training step's gates, kept, on `device`: f16's loss scale undone, the backbone's norm
 *  clipped to `maxNorm`, and both NaN (the whole step skipped) when any gradient is not
 *  finite. The backbone's gradients are the same on every rank; the classifier shards'
 *  norms are summed over the ranks, so every rank skips alike. */
export function stepGates(backbone: Tensor[], head: Tensor[], comm: Communicator, scaler: LossScaler | null, maxNorm: number, device: string): StepGates {
  return tidy(() => {
    const bsq = gradSquaredNorm(backbone, device);
    const hsq = gradSquaredNorm(head, device);
    comm.allReduce([hsq], 'sum');
    const checked = ops.add(bsq, ops.scale(hsq, 0)); // bsq, or NaN when hsq is not finite
    const gate = (clip: number) => keep(scaler === null ? gradientGate(checked, { maxNorm: clip }) : scaler.gate(checked, clip));
    return { backbone: gate(maxNorm), head: gate(Infinity), sumsq: keep(checked) };
  });
}

/** Clips the gradients of `params` in place; returns their total norm before clipping (read
 *  back: a synchronisation on a GPU; the trainer uses `stepGates` instead). */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  const withGrad = params.filter((p) => p.grad !== null);
  if (withGrad.length === 0) return 0;
  const sq = gradSquaredNorm(withGrad, withGrad[0].device);
  const total = Math.sqrt(sq.item());
  sq.dispose();
  const factor = maxNorm / (total + 1e-6);
  if (factor < 1) {
    for (const p of withGrad) {
      const scaled = keep(new Tensor(native.scale(p.grad!.handle('clipGradNorm'), factor)));
      p.grad!.dispose();
      p.grad = scaled;
    }
  }
  return total;
}
