//! Row-wise log-softmax and the fused log-softmax + cross-entropy (mean over rows).

use super::piece;
use crate::Float;
use rayon::prelude::*;

/// `y = x − logΣexp(x)` per row of `[R, K]`, max-shifted.
pub fn log_softmax<T: Float>(k: usize, x: &[T], y: &mut [T]) {
    y.par_chunks_mut(piece(k)).zip(x.par_chunks(piece(k))).for_each(|(yr, xr)| {
        let m = xr.iter().fold(f64::NEG_INFINITY, |m, v| m.max(v.f64()));
        let lse = m + xr.iter().map(|v| (v.f64() - m).exp()).sum::<f64>().ln();
        yr.iter_mut().zip(xr).for_each(|(y, &x)| *y = T::c(x.f64() - lse));
    });
}

/// `gx = gy − softmax·Σgy` per row, from the forward output `y`.
pub fn log_softmax_backward<T: Float>(k: usize, gy: &[T], y: &[T], gx: &mut [T]) {
    gx.par_chunks_mut(piece(k)).zip(gy.par_chunks(piece(k)).zip(y.par_chunks(piece(k)))).for_each(|(gr, (gyr, yr))| {
        let s: f64 = gyr.iter().map(|v| v.f64()).sum();
        gr.iter_mut().zip(gyr.iter().zip(yr)).for_each(|(g, (&gy, &y))| *g = T::c(gy.f64() - y.f64().exp() * s));
    });
}

/// Mean negative log-likelihood of `labels` under log-probabilities `logp [R, K]`.
pub fn nll_mean<T: Float>(k: usize, logp: &[T], labels: &[usize]) -> f64 {
    let r = labels.len();
    -labels.iter().enumerate().map(|(i, &l)| logp[i * k + l].f64()).sum::<f64>() / r as f64
}

/// Gradient of `g · nll_mean(log_softmax(x))`: `g·(softmax − onehot)/R`, from `logp`.
pub fn cross_entropy_backward<T: Float>(k: usize, logp: &[T], labels: &[usize], g: f64, gx: &mut [T]) {
    let scale = g / labels.len() as f64;
    gx.par_chunks_mut(piece(k)).zip(logp.par_chunks(piece(k))).enumerate().for_each(|(i, (gr, lr))| {
        gr.iter_mut().zip(lr).enumerate().for_each(|(j, (d, &lp))| {
            let onehot = if j == labels[i] { 1.0 } else { 0.0 };
            *d = T::c(scale * (lp.f64().exp() - onehot));
        });
    });
}
