//! In-place SGD with momentum and L2 weight decay (PyTorch's `torch.optim.SGD` rule), and
//! the gate that folds loss-scale undoing, norm clipping and bad-step skipping into it.

use crate::Float;
use rayon::prelude::*;

#[derive(Clone, Copy, Debug)]
pub struct Sgd<T> {
    pub lr: T,
    pub momentum: T,
    pub weight_decay: T,
    /// Multiplies the gradient (1/loss scale times the clip coefficient).
    pub grad_scale: T,
}

/// `d = k·g + wd·p; buf = momentum·buf + d; p −= lr·buf`.
pub fn sgd_step<T: Float>(param: &mut [T], grad: &[T], buf: &mut [T], h: Sgd<T>) {
    param.par_iter_mut().zip(buf.par_iter_mut().zip(grad.par_iter())).for_each(|(p, (b, &g))| {
        *b = h.momentum * *b + h.grad_scale * g + h.weight_decay * *p;
        *p -= h.lr * *b;
    });
}

/// GradScaler's update of `[scale, good steps, overflowed steps]` after a step with `gate`
/// (not finite: the step was skipped).
pub fn loss_scale_update(gate: f64, state: &mut [f32; 3], rule: crate::ScaleRule) {
    let [scale, good, overflows] = state;
    if gate.is_finite() {
        *good += 1.0;
        if *good >= rule.interval as f32 {
            *scale = (*scale as f64 * rule.growth) as f32;
            *good = 0.0;
        }
    } else {
        *scale = (*scale as f64 * rule.backoff) as f32;
        *good = 0.0;
        *overflows += 1.0;
    }
}

/// `inv_scale · min(1, max_norm / (√sumsq · inv_scale + 1e-6))`; NaN when `sumsq` is not
/// finite (the step is then skipped).
pub fn clip_gate(sumsq: f64, inv_scale: f64, max_norm: f64) -> f64 {
    if !sumsq.is_finite() {
        return f64::NAN;
    }
    inv_scale * (max_norm / (sumsq.sqrt() * inv_scale + 1e-6)).min(1.0)
}
