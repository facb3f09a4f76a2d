// Gradient-norm clipping (torch.nn.utils.clip_grad_norm_): scales every gradient by
// maxNorm / total norm when the total L2 norm of all of them exceeds maxNorm.

import { native } from '../native';
import { Tensor } from '../tensor/tensor';
import { keep, noGrad, tidy } from '../tensor/scope';
import * as ops from '../tensor/ops';

/** Σ‖g‖² over `grads`, summed on their devices and read back once per device (a GPU step
 *  then waits for the host once, not once per parameter). */
export function squaredNorm(grads: Tensor[]): number {
  const byDevice = new Map<string, Tensor[]>();
  for (const g of grads) byDevice.set(g.device, [...(byDevice.get(g.device) ?? []), g]);
  return tidy(() =>
    noGrad(() => [...byDevice.values()].reduce((s, gs) => s + gs.map((g) => ops.sum(ops.mul(g, g))).reduce((a, b) => ops.add(a, b)).item(), 0)),
  );
}

/** Clips the gradients of `params` in place; returns their total norm before clipping. */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  const withGrad = params.filter((p) => p.grad !== null);
  const total = Math.sqrt(squaredNorm(withGrad.map((p) => p.grad!)));
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
