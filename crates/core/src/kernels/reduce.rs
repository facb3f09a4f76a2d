//! Reductions: whole-tensor sum, sum of squares and per-channel sum.

use crate::Float;
use rayon::prelude::*;

/// Fixed-size blocks summed in order: the result does not depend on the thread count.
const BLOCK: usize = 1 << 14;

pub fn sum<T: Float>(x: &[T]) -> f64 {
    let blocks: Vec<f64> = x.par_chunks(BLOCK).map(|b| lanes(b.len(), |i| [b[i].f64()])[0]).collect();
    blocks.iter().sum()
}

/// Σx² in f64, in the same fixed order as [`sum`] (gradient norms).
pub fn sum_squares<T: Float>(x: &[T]) -> f64 {
    let blocks: Vec<f64> = x.par_chunks(BLOCK).map(|b| lanes(b.len(), |i| [b[i].f64() * b[i].f64()])[0]).collect();
    blocks.iter().sum()
}

/// `K` sums of `f(i)` over `0..n` in f64, each split over eight accumulators: one f64
/// accumulator is a chain of dependent adds (latency-bound, never vectorised); eight in a
/// fixed order vectorise and stay deterministic.
#[inline(always)]
pub fn lanes<const K: usize>(n: usize, mut f: impl FnMut(usize) -> [f64; K]) -> [f64; K] {
    let mut acc = [[0f64; 8]; K];
    let full = n / 8 * 8;
    for i in (0..full).step_by(8) {
        for l in 0..8 {
            let v = f(i + l);
            acc.iter_mut().zip(v).for_each(|(a, v)| a[l] += v);
        }
    }
    let mut out = [0f64; K];
    for i in full..n {
        let v = f(i);
        (0..K).for_each(|k| out[k] += v[k]);
    }
    for k in 0..K {
        out[k] += acc[k].iter().sum::<f64>();
    }
    out
}

/// Sum over every dimension but the channel one of `[N, C, S]` (bias gradients).
pub fn channel_sum<T: Float>(n: usize, c: usize, s: usize, x: &[T], out: &mut [T]) {
    out.par_iter_mut().enumerate().for_each(|(ch, o)| {
        *o = T::c(
            (0..n).map(|i| &x[(i * c + ch) * s..(i * c + ch + 1) * s]).map(|p| lanes(s, |j| [p[j].f64()])[0]).sum(),
        );
    });
}
