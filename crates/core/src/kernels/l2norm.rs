//! Row-wise L2 normalisation and its backward.

use super::piece;
use crate::Float;
use rayon::prelude::*;

/// `y = x / max(‖x‖, eps)` for each row of `[R, D]` (as torch's `F.normalize`).
pub fn l2_normalize<T: Float>(d: usize, eps: f64, x: &[T], y: &mut [T]) {
    y.par_chunks_mut(piece(d)).zip(x.par_chunks(piece(d))).for_each(|(yr, xr)| {
        let inv = T::c(1.0 / row_norm(xr).max(eps));
        yr.iter_mut().zip(xr).for_each(|(y, &x)| *y = x * inv);
    });
}

fn row_norm<T: Float>(r: &[T]) -> f64 {
    r.iter().map(|v| v.f64() * v.f64()).sum::<f64>().sqrt()
}

/// Gradient of [`l2_normalize`]: `(gy − y·⟨gy, y⟩)/‖x‖`, or `gy/eps` where the clamp held.
pub fn l2_normalize_backward<T: Float>(d: usize, eps: f64, gy: &[T], x: &[T], gx: &mut [T]) {
    gx.par_chunks_mut(piece(d)).zip(gy.par_chunks(piece(d)).zip(x.par_chunks(piece(d)))).for_each(|(gr, (gyr, xr))| {
        let norm = row_norm(xr);
        if norm <= eps {
            gr.iter_mut().zip(gyr).for_each(|(g, &gy)| *g = T::c(gy.f64() / eps));
            return;
        }
        let dot: f64 = gyr.iter().zip(xr).map(|(a, b)| a.f64() * b.f64()).sum::<f64>() / norm;
        gr.iter_mut()
            .zip(gyr.iter().zip(xr))
            .for_each(|(g, (&gy, &x))| *g = T::c((gy.f64() - x.f64() / norm * dot) / norm));
    });
}
