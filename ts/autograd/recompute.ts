// Activation checkpointing: a block's forward runs without keeping its intermediates; its
// backward runs the forward again (same inputs, same random seeds, same autocast precision,
// BatchNorm's running statistics left alone) and differentiates that. Memory for compute, per block.

import { Tensor } from '../tensor/tensor';
import { isGradEnabled, noGrad, tidy } from '../tensor/scope';
import { randomState } from '../tensor/random';
import { autocastDtype } from '../tensor/autocast';
import { record } from './tape';

let depth = 0;

/** Whether a checkpoint recompute is running (BatchNorm then must not count the batch twice). */
export function isRecomputing(): boolean {
  return depth > 0;
}

/** Runs `fn` as a recompute. */
export function recomputing<R>(fn: () => R): R {
  depth++;
  try {
    return fn();
  } finally {
    depth--;
  }
}

/** `fn(x)` whose intermediates are recomputed in the backward instead of kept; `params` are
 *  the parameters `fn` uses (their gradients accumulate during the recompute). */
export function checkpoint(fn: (x: Tensor) => Tensor, x: Tensor, params: Tensor[]): Tensor {
  if (!isGradEnabled() || !(x.requiresGrad || params.some((p) => p.requiresGrad))) return fn(x);
  const [seeds, precision] = [randomState(), autocastDtype()];
  // Intermediates die here, not at the end of the caller's scope: that is the saving.
  const y = tidy(() => noGrad(() => fn(x)));
  return record(y, 'checkpoint', [x, ...params], { fn, seeds, precision });
}
