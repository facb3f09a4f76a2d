//! Measures the machine's f32 FMA peak: independent FMA chains in the widest vector unit,
//! on every rayon thread at once. The figure conv GFLOP/s are compared against.

use rayon::prelude::*;
use std::time::Instant;

/// Independent accumulators: more than FMA latency × FMA ports, so throughput bounds the loop.
const CHAINS: usize = 12;

#[derive(Debug, Clone, Copy)]
pub struct Peak {
    pub gflops: f64,
    pub threads: usize,
    pub isa: &'static str,
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Twelve FMA chains held in registers (named locals: an array may live in memory and
    /// make the loop latency-bound on store forwarding). Returns a value derived from them
    /// so the loop cannot be optimised away.
    macro_rules! fma_chains {
        ($name:ident, $feat:literal, $vec:ty, $set1:ident, $fma:ident, $add:ident, $reduce:expr) => {
            #[target_feature(enable = $feat)]
            pub unsafe fn $name(iters: usize) -> f32 {
                let (a, b) = ($set1(0.999_999), $set1(1e-7));
                let [mut c0, mut c1, mut c2, mut c3, mut c4, mut c5]: [$vec; 6] = [$set1(1.0); 6];
                let [mut c6, mut c7, mut c8, mut c9, mut c10, mut c11]: [$vec; 6] = [$set1(2.0); 6];
                for _ in 0..iters {
                    c0 = $fma(c0, a, b);
                    c1 = $fma(c1, a, b);
                    c2 = $fma(c2, a, b);
                    c3 = $fma(c3, a, b);
                    c4 = $fma(c4, a, b);
                    c5 = $fma(c5, a, b);
                    c6 = $fma(c6, a, b);
                    c7 = $fma(c7, a, b);
                    c8 = $fma(c8, a, b);
                    c9 = $fma(c9, a, b);
                    c10 = $fma(c10, a, b);
                    c11 = $fma(c11, a, b);
                }
                let s =
                    [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11].into_iter().fold($set1(0.0), |x, y| $add(x, y));
                $reduce(s)
            }
        };
    }

    fma_chains!(avx512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, |s| _mm512_reduce_add_ps(s));
    fma_chains!(avx2, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, |s: __m256| {
        let mut out = [0f32; 8];
        _mm256_storeu_ps(out.as_mut_ptr(), s);
        out.iter().sum::<f32>()
    });
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
    let iters = 200_000_000 / lanes.max(4); // ~50 ms a run: long enough to reach full clocks
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
