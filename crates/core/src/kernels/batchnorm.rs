//! Batch normalisation over `[N, C, S]` (S = H·W for 2d, 1 for 1d): statistics per channel
//! accumulated in f64, training and evaluation forward, and the backward of both.

use super::reduce::lanes;
use crate::{ensure, Float, Result};
use rayon::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BnGeom {
    pub n: usize,
    pub c: usize,
    pub s: usize,
}

impl BnGeom {
    pub fn new(op: &str, x: &[usize], channels: usize) -> Result<BnGeom> {
        ensure!(x.len() >= 2, op, "input must be [N,C] or [N,C,H,W], got shape {x:?}");
        ensure!(x[1] == channels, op, "input shape {x:?} has {} channels but the parameters have {channels}", x[1]);
        Ok(BnGeom { n: x[0], c: x[1], s: x[2..].iter().product() })
    }
    fn count(&self) -> usize {
        self.n * self.s
    }
    fn plane<'a, T>(&self, x: &'a [T], n: usize, c: usize) -> &'a [T] {
        let at = (n * self.c + c) * self.s;
        &x[at..at + self.s]
    }
}

/// Per-channel mean and biased variance in one pass: f64 sums of `x − k` and `(x − k)²`
/// around a shift `k` (a value of the channel) keep the variance free of cancellation
/// when the mean is large against the spread.
pub fn batch_stats<T: Float>(g: &BnGeom, x: &[T]) -> (Vec<T>, Vec<T>) {
    let m = g.count() as f64;
    (0..g.c)
        .into_par_iter()
        .map(|c| {
            let k = g.plane(x, 0, c).first().map_or(0.0, |v| v.f64());
            let [s, s2] = (0..g.n).map(|n| g.plane(x, n, c)).fold([0.0; 2], |[a, b], p| {
                let [s, s2] = lanes(p.len(), |i| {
                    let d = p[i].f64() - k;
                    [d, d * d]
                });
                [a + s, b + s2]
            });
            let mean = s / m;
            (T::c(k + mean), T::c((s2 / m - mean * mean).max(0.0)))
        })
        .unzip()
}

pub fn invstd<T: Float>(var: &[T], eps: f64) -> Vec<T> {
    var.iter().map(|v| T::c(1.0 / (v.f64() + eps).sqrt())).collect()
}

/// `y = (x − mean)·invstd·weight + bias` per channel.
pub fn apply<T: Float>(g: &BnGeom, x: &[T], mean: &[T], invstd: &[T], weight: &[T], bias: &[T], y: &mut [T]) {
    let per = super::piece(g.c * g.s);
    y.par_chunks_mut(per).zip(x.par_chunks(per)).for_each(|(yn, xn)| {
        for c in 0..g.c {
            let (a, m, b) = (invstd[c] * weight[c], mean[c], bias[c]);
            let r = c * g.s..(c + 1) * g.s;
            yn[r.clone()].iter_mut().zip(&xn[r]).for_each(|(y, &x)| *y = (x - m) * a + b);
        }
    });
}

/// Running statistics update (PyTorch's rule: unbiased variance, `momentum` weight on the new value).
pub fn update_running<T: Float>(
    g: &BnGeom,
    mean: &[T],
    var: &[T],
    momentum: f64,
    running_mean: &mut [T],
    running_var: &mut [T],
) {
    let m = g.count() as f64;
    let unbias = if m > 1.0 { m / (m - 1.0) } else { 1.0 };
    for c in 0..g.c {
        running_mean[c] = T::c((1.0 - momentum) * running_mean[c].f64() + momentum * mean[c].f64());
        running_var[c] = T::c((1.0 - momentum) * running_var[c].f64() + momentum * var[c].f64() * unbias);
    }
}

/// Gradients of [`apply`]. With `batch_stats` the mean and invstd were computed from this
/// batch (training) and their dependence on `x` is included; otherwise they are constants.
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Float>(
    g: &BnGeom,
    gy: &[T],
    x: &[T],
    mean: &[T],
    invstd: &[T],
    weight: &[T],
    batch_stats: bool,
    gx: &mut [T],
    gweight: &mut [T],
    gbias: &mut [T],
) {
    let sums: Vec<(f64, f64)> = (0..g.c)
        .into_par_iter()
        .map(|c| {
            let (m, is) = (mean[c].f64(), invstd[c].f64());
            (0..g.n).fold((0.0, 0.0), |(sg, sgx), n| {
                let (gp, xp) = (g.plane(gy, n, c), g.plane(x, n, c));
                let [s, sx] = lanes(gp.len(), |i| [gp[i].f64(), gp[i].f64() * (xp[i].f64() - m) * is]);
                (sg + s, sgx + sx)
            })
        })
        .collect();
    for c in 0..g.c {
        gbias[c] = T::c(sums[c].0);
        gweight[c] = T::c(sums[c].1);
    }
    let per = super::piece(g.c * g.s);
    let inv_m = 1.0 / g.count() as f64;
    gx.par_chunks_mut(per).zip(gy.par_chunks(per).zip(x.par_chunks(per))).for_each(|(gxn, (gyn, xn))| {
        for c in 0..g.c {
            let (m, is, w) = (mean[c], invstd[c], weight[c]);
            let r = c * g.s..(c + 1) * g.s;
            let it = gxn[r.clone()].iter_mut().zip(gyn[r.clone()].iter().zip(&xn[r]));
            if batch_stats {
                let (sg, sgx) = (T::c(sums[c].0 * inv_m), T::c(sums[c].1 * inv_m));
                it.for_each(|(d, (&gy, &x))| *d = w * is * (gy - sg - (x - m) * is * sgx));
            } else {
                it.for_each(|(d, (&gy, _))| *d = gy * w * is);
            }
        }
    });
}
