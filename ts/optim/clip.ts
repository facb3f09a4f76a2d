// Gradient-norm clipping (torch.nn.utils.clip_grad_norm_): scales every gradient by
// maxNorm / total norm when the total L2 norm of all of them exceeds maxNorm.

import { native } from '../native';
import { Tensor } from '../tensor/tensor';
import { keep, noGrad, tidy } from '../tensor/scope';
import * as ops from '../tensor/ops';

/** Clips the gradients of `params` in place; returns their total norm before clipping. */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  const withGrad = params.filter((p) => p.grad !== null);
  const total = Math.sqrt(
    tidy(() => noGrad(() => withGrad.reduce((s, p) => s + ops.sum(ops.mul(p.grad!, p.grad!)).item(), 0))),
  );
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
