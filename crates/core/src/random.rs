//! Counter-based random numbers: element `i` of stream `seed` depends on nothing else, so
//! results are identical whatever the thread count or the order elements are visited in.

use crate::Float;
use rayon::prelude::*;

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output mix: a bijection that scatters every input bit.
fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn splitmix64(z: u64) -> u64 {
    finalize(z.wrapping_add(GOLDEN))
}

/// A hash of two words, for deriving seeds (per epoch, per sample, per step…).
pub fn mix(a: u64, b: u64) -> u64 {
    finalize(a ^ b.wrapping_mul(GOLDEN))
}

/// A sequential view of stream `seed`: draw `k` is `uniform(seed, k)`.
pub struct Stream {
    seed: u64,
    next: u64,
}

impl Stream {
    pub fn new(seed: u64) -> Stream {
        Stream { seed, next: 0 }
    }
    pub fn uniform(&mut self) -> f64 {
        self.next += 1;
        uniform(self.seed, self.next - 1)
    }
    /// A uniformly chosen element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[((self.uniform() * xs.len() as f64) as usize).min(xs.len() - 1)]
    }
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

/// Elements `offset..offset + out.len()` of the normal stream `seed` (a shard of a larger
/// tensor draws the same values as the whole would).
pub fn fill_normal<T: Float>(seed: u64, offset: u64, mean: f64, std: f64, out: &mut [T]) {
    out.par_iter_mut().enumerate().for_each(|(i, v)| *v = T::c(mean + std * normal(seed, offset + i as u64)));
}

pub fn fill_uniform<T: Float>(seed: u64, lo: f64, hi: f64, out: &mut [T]) {
    out.par_iter_mut().enumerate().for_each(|(i, v)| *v = T::c(lo + (hi - lo) * uniform(seed, i as u64)));
}
