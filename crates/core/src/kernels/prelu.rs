//! Per-channel PReLU over `[N, C, S]` tensors.

use super::piece;
use super::reduce::lanes;
use crate::Float;
use rayon::prelude::*;

/// `y = x` where `x > 0`, else `alpha[c]·x`.
pub fn prelu<T: Float>(c: usize, s: usize, x: &[T], alpha: &[T], y: &mut [T]) {
    y.par_chunks_mut(piece(c * s)).zip(x.par_chunks(piece(c * s))).for_each(|(yn, xn)| {
        for ((yc, xc), &a) in yn.chunks_mut(piece(s)).zip(xn.chunks(piece(s))).zip(alpha) {
            yc.iter_mut().zip(xc).for_each(|(y, &x)| *y = if x > T::zero() { x } else { a * x });
        }
    });
}

/// Gradients of [`prelu`], sample by sample (each plane still in cache for the second loop): `gx`, and per sample the
/// per-channel `Σ gy·x` over `x ≤ 0`, summed over samples in order (deterministic).
pub fn prelu_backward<T: Float>(c: usize, s: usize, gy: &[T], x: &[T], alpha: &[T], gx: &mut [T], galpha: &mut [T]) {
    let per = piece(c * s);
    let sums: Vec<Vec<f64>> = gx
        .par_chunks_mut(per)
        .zip(gy.par_chunks(per).zip(x.par_chunks(per)))
        .map(|(gxn, (gyn, xn))| {
            let planes = gxn.chunks_mut(piece(s)).zip(gyn.chunks(piece(s)).zip(xn.chunks(piece(s)))).zip(alpha);
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
