//! Counter-based random numbers: element `i` of stream `seed` depends on nothing else, so
//! results are identical whatever the thread count or the order elements are visited in.

use crate::Float;
use rayon::prelude::*;

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [0, 1) with 53 random bits.
pub fn uniform(seed: u64, i: u64) -> f64 {
    let bits = splitmix64(splitmix64(seed) ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03));
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Standard normal by Box–Muller on the pair of uniforms `(2i, 2i+1)`.
pub fn normal(seed: u64, i: u64) -> f64 {
    let u1 = 1.0 - uniform(seed, 2 * i); // (0, 1]: ln is finite
    let u2 = uniform(seed, 2 * i + 1);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

pub fn fill_normal<T: Float>(seed: u64, mean: f64, std: f64, out: &mut [T]) {
    out.par_iter_mut().enumerate().for_each(|(i, v)| *v = T::c(mean + std * normal(seed, i as u64)));
}

pub fn fill_uniform<T: Float>(seed: u64, lo: f64, hi: f64, out: &mut [T]) {
    out.par_iter_mut().enumerate().for_each(|(i, v)| *v = T::c(lo + (hi - lo) * uniform(seed, i as u64)));
}
