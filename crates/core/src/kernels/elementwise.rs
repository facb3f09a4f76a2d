//! Same-shape elementwise arithmetic, parallel over large arrays.

use super::piece;
use super::PAR_MIN;
use crate::Float;
use rayon::prelude::*;

fn zip_map<T: Float>(a: &[T], b: &[T], out: &mut [T], f: impl Fn(T, T) -> T + Sync) {
    if out.len() < PAR_MIN {
        out.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (&x, &y))| *o = f(x, y));
    } else {
        out.par_iter_mut().zip(a.par_iter().zip(b)).for_each(|(o, (&x, &y))| *o = f(x, y));
    }
}

pub fn add<T: Float>(a: &[T], b: &[T], out: &mut [T]) {
    zip_map(a, b, out, |x, y| x + y);
}

pub fn mul<T: Float>(a: &[T], b: &[T], out: &mut [T]) {
    zip_map(a, b, out, |x, y| x * y);
}

/// `out = a·s`.
pub fn scale<T: Float>(a: &[T], s: T, out: &mut [T]) {
    zip_map(a, a, out, |x, _| x * s);
}

/// `acc += a·s` in place (gradient accumulation, updates).
pub fn add_scaled_into<T: Float>(acc: &mut [T], a: &[T], s: T) {
    if acc.len() < PAR_MIN {
        acc.iter_mut().zip(a).for_each(|(o, &x)| *o += x * s);
    } else {
        acc.par_iter_mut().zip(a.par_iter()).for_each(|(o, &x)| *o += x * s);
    }
}

/// `out[n, c, s] = x[n, c, s] + v[c]` over `[N, C, S]` (a per-channel shift).
pub fn add_channel<T: Float>(c: usize, s: usize, x: &[T], v: &[T], out: &mut [T]) {
    out.par_chunks_mut(piece(c * s)).zip(x.par_chunks(piece(c * s))).for_each(|(on, xn)| {
        for ((oc, xc), &b) in on.chunks_mut(piece(s)).zip(xn.chunks(piece(s))).zip(v) {
            oc.iter_mut().zip(xc).for_each(|(o, &x)| *o = x + b);
        }
    });
}
