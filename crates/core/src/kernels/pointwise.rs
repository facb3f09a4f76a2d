//! Per-channel PReLU and seeded dropout over `[N, C, S]` tensors.

use crate::random::uniform;
use crate::Float;
use rayon::prelude::*;

/// `y = x` where `x > 0`, else `alpha[c]·x`.
pub fn prelu<T: Float>(c: usize, s: usize, x: &[T], alpha: &[T], y: &mut [T]) {
    y.par_chunks_mut(c * s).zip(x.par_chunks(c * s)).for_each(|(yn, xn)| {
        for ((yc, xc), &a) in yn.chunks_mut(s).zip(xn.chunks(s)).zip(alpha) {
            yc.iter_mut().zip(xc).for_each(|(y, &x)| *y = if x > T::zero() { x } else { a * x });
        }
    });
}

pub fn prelu_backward<T: Float>(c: usize, s: usize, gy: &[T], x: &[T], alpha: &[T], gx: &mut [T], galpha: &mut [T]) {
    let per = c * s;
    gx.par_chunks_mut(per).zip(gy.par_chunks(per).zip(x.par_chunks(per))).for_each(|(gxn, (gyn, xn))| {
        for ((gxc, (gyc, xc)), &a) in gxn.chunks_mut(s).zip(gyn.chunks(s).zip(xn.chunks(s))).zip(alpha) {
            gxc.iter_mut().zip(gyc.iter().zip(xc)).for_each(|(d, (&g, &x))| *d = if x > T::zero() { g } else { a * g });
        }
    });
    let n = x.len().checked_div(per).unwrap_or(0);
    let sums: Vec<f64> = (0..c)
        .into_par_iter()
        .map(|ch| {
            (0..n)
                .map(|i| {
                    let r = i * per + ch * s..i * per + (ch + 1) * s;
                    gy[r.clone()]
                        .iter()
                        .zip(&x[r])
                        .filter(|(_, &x)| x <= T::zero())
                        .map(|(g, x)| g.f64() * x.f64())
                        .sum::<f64>()
                })
                .sum()
        })
        .collect();
    galpha.iter_mut().zip(sums).for_each(|(d, s)| *d = T::c(s));
}

/// The inverted-dropout multiplier of element `i`: 0 with probability `p`, else `1/(1−p)`.
fn dropout_scale(seed: u64, p: f64, i: usize) -> f64 {
    if uniform(seed, i as u64) < p {
        0.0
    } else {
        1.0 / (1.0 - p)
    }
}

/// `out = x·mask(seed, p)`; the backward is the same call on the upstream gradient.
pub fn dropout<T: Float>(seed: u64, p: f64, x: &[T], out: &mut [T]) {
    out.par_iter_mut().zip(x.par_iter()).enumerate().for_each(|(i, (o, &x))| *o = x * T::c(dropout_scale(seed, p, i)));
}
