//! Per-channel PReLU and seeded dropout over `[N, C, S]` tensors.

use super::reduce::lanes;
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

/// Gradients of [`prelu`], sample by sample (each plane still in cache for the second loop): `gx`, and per sample the
/// per-channel `Σ gy·x` over `x ≤ 0`, summed over samples in order (deterministic).
pub fn prelu_backward<T: Float>(c: usize, s: usize, gy: &[T], x: &[T], alpha: &[T], gx: &mut [T], galpha: &mut [T]) {
    let per = c * s;
    let sums: Vec<Vec<f64>> = gx
        .par_chunks_mut(per)
        .zip(gy.par_chunks(per).zip(x.par_chunks(per)))
        .map(|(gxn, (gyn, xn))| {
            let planes = gxn.chunks_mut(s).zip(gyn.chunks(s).zip(xn.chunks(s))).zip(alpha);
            planes
                .map(|((d, (g, x)), &a)| {
                    d.iter_mut()
                        .zip(g.iter().zip(x))
                        .for_each(|(d, (&g, &x))| *d = if x > T::zero() { g } else { a * g });
                    lanes(s, |j| [if x[j] <= T::zero() { g[j].f64() * x[j].f64() } else { 0.0 }])[0]
                })
                .collect()
        })
        .collect();
    for (ch, d) in galpha.iter_mut().enumerate() {
        *d = T::c(sums.iter().map(|v| v[ch]).sum());
    }
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
