//! In-place SGD with momentum and L2 weight decay (PyTorch's `torch.optim.SGD` rule).

use crate::Float;
use rayon::prelude::*;

/// `d = g + wd·p; buf = momentum·buf + d; p −= lr·buf`.
pub fn sgd_step<T: Float>(param: &mut [T], grad: &[T], buf: &mut [T], lr: T, momentum: T, weight_decay: T) {
    param.par_iter_mut().zip(buf.par_iter_mut().zip(grad.par_iter())).for_each(|(p, (b, &g))| {
        *b = momentum * *b + g + weight_decay * *p;
        *p -= lr * *b;
    });
}
