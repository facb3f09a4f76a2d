//! Seeded dropout: the mask is a pure function of (seed, element index), as on the GPU.

use crate::random::uniform;
use crate::Float;
use rayon::prelude::*;

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
