//! Measures the machine's f32 FMA peak: independent FMA chains in the widest vector unit,
//! on every rayon thread at once. The figure conv GFLOP/s are compared against.

use rayon::prelude::*;
use std::time::Instant;

const CHAINS: usize = 12; // enough independent accumulators to cover FMA latency × ports

#[derive(Debug, Clone, Copy)]
pub struct Peak {
    pub gflops: f64,
    pub threads: usize,
    pub isa: &'static str,
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::CHAINS;
    use std::arch::x86_64::*;

    /// Returns a value derived from the accumulators so the loop cannot be optimised away.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512(iters: usize) -> f32 {
        let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); CHAINS];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2(iters: usize) -> f32 {
        let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); CHAINS];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, a, b);
            }
        }
        let mut out = [0f32; 8];
        acc.iter()
            .map(|&v| {
                _mm256_storeu_ps(out.as_mut_ptr(), v);
                out.iter().sum::<f32>()
            })
            .sum()
    }
}

fn scalar(iters: usize) -> f32 {
    let mut acc = [1.0f32; CHAINS];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = v.mul_add(0.999_999, 1e-7);
        }
    }
    acc.iter().sum()
}

/// (lanes, isa name, kernel) of the widest FMA this CPU runs.
fn widest() -> (usize, &'static str, fn(usize) -> f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was detected at run time.
            return (16, "avx512", |n| unsafe { x86::avx512(n) });
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the features were detected at run time.
            return (8, "avx2+fma", |n| unsafe { x86::avx2(n) });
        }
    }
    (1, "scalar", scalar)
}

pub fn measure() -> Peak {
    let (lanes, isa, kernel) = widest();
    let threads = rayon::current_num_threads();
    let iters = 20_000_000 / lanes.max(4);
    let flops = (threads * iters * CHAINS * lanes * 2) as f64;
    let mut best = 0.0f64;
    for _ in 0..3 {
        let t = Instant::now();
        let sink: f32 = (0..threads).into_par_iter().map(|_| kernel(iters)).sum();
        let secs = t.elapsed().as_secs_f64();
        std::hint::black_box(sink);
        best = best.max(flops / secs / 1e9);
    }
    Peak { gflops: best, threads, isa }
}
