//! The blocked GEMM against a direct f64 product, in f32 (the AVX-512 kernel where the CPU
//! has it) and f64 (the portable kernel): every transpose combination, sizes that are not
//! multiples of the 8×32 tile or the 128-deep panel, accumulate or overwrite, 1–3 threads.
//! Tolerance: |Δ| ≤ 1e-5·(1 + Σ|a·b|) per element (f32), 1e-12 (f64); NaN fails.

use maskfr_core::kernels::gemm::{gemm, DenseA, DenseB, DenseC};
use maskfr_core::kernels::matmul::Mat;
use maskfr_core::{random, Float};

fn randn<T: Float>(n: usize, seed: u64) -> Vec<T> {
    (0..n).map(|i| T::c(random::normal(seed, i as u64))).collect()
}

fn transpose<T: Float>(x: &[T], rows: usize, cols: usize) -> Vec<T> {
    (0..rows * cols).map(|i| x[(i % rows) * cols + i / rows]).collect()
}

fn check<T: Float>(m: usize, k: usize, n: usize, threads: usize, tol: f64) {
    let (a, b, c0) = (randn::<T>(m * k, 1), randn::<T>(k * n, 2), randn::<T>(m * n, 3));
    let (at, bt) = (transpose(&a, m, k), transpose(&b, k, n));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let ma = if ta { Mat::t(&at[..], k, m) } else { Mat::new(&a[..], m, k) };
        let mb = if tb { Mat::t(&bt[..], n, k) } else { Mat::new(&b[..], k, n) };
        for accumulate in [false, true] {
            let mut c = c0.clone();
            let out = DenseC::new(&mut c, m, n);
            pool.install(|| gemm(&DenseA(ma), &DenseB(mb), &out, accumulate, true));
            for i in 0..m {
                for j in 0..n {
                    let (mut e, mut mag) = (if accumulate { c0[i * n + j].f64() } else { 0.0 }, 1.0);
                    for p in 0..k {
                        let ab = a[i * k + p].f64() * b[p * n + j].f64();
                        e += ab;
                        mag += ab.abs();
                    }
                    let got = c[i * n + j].f64();
                    assert!(
                        (got - e).abs() <= tol * mag,
                        "{m}x{k}x{n} ta={ta} tb={tb} acc={accumulate} threads={threads} [{i},{j}]: {got} vs {e}"
                    );
                }
            }
        }
    }
}

const SIZES: [(usize, usize, usize); 8] =
    [(1, 1, 1), (8, 128, 32), (9, 129, 33), (7, 300, 100), (50, 20, 70), (100, 260, 5), (3, 5, 700), (260, 3, 40)];

#[test]
fn f32_gemm_matches_a_direct_product() {
    for threads in [1, 2, 3] {
        for &(m, k, n) in &SIZES {
            check::<f32>(m, k, n, threads, 1e-5);
        }
    }
}

#[test]
fn f64_gemm_matches_a_direct_product() {
    for threads in [1, 2] {
        for &(m, k, n) in &SIZES {
            check::<f64>(m, k, n, threads, 1e-12);
        }
    }
}

#[test]
fn zero_depth_gives_zeros_or_leaves_c() {
    let (a, b) = (vec![0f32; 0], vec![0f32; 0]);
    for accumulate in [false, true] {
        let mut c = vec![2f32; 6];
        gemm(&DenseA(Mat::new(&a, 2, 0)), &DenseB(Mat::new(&b, 0, 3)), &DenseC::new(&mut c, 2, 3), accumulate, true);
        assert_eq!(c, vec![if accumulate { 2.0 } else { 0.0 }; 6]);
    }
}

/// The packing transposes (register blocks of 16 on AVX-512, scalar edges) against their
/// definition, on sizes with ragged edges in both directions.
#[test]
fn panel_transposes_match_their_definition() {
    use maskfr_core::kernels::gemm::{transpose_into_a_panel, transpose_into_panel, MR, NR};
    for (cols, depth, ld) in [(32, 256, 256), (20, 37, 40), (16, 16, 16), (3, 50, 51)] {
        let src: Vec<f32> = randn(cols * ld, 7);
        let mut panel = vec![f32::NAN; depth * NR];
        transpose_into_panel(&src, ld, cols, depth, &mut panel);
        for p in 0..depth {
            for c in 0..cols {
                assert_eq!(panel[p * NR + c], src[c * ld + p], "B panel ({cols}×{depth}) at p {p}, c {c}");
            }
        }
    }
    for (len, ld) in [(256, 300), (35, 35), (15, 20), (0, 4)] {
        let src: Vec<f32> = randn((MR - 1) * ld + len, 8);
        let mut panel = vec![f32::NAN; len * MR];
        transpose_into_a_panel(&src, ld, len, &mut panel);
        for t in 0..len {
            for r in 0..MR {
                assert_eq!(panel[t * MR + r], src[r * ld + t], "A panel (len {len}) at t {t}, r {r}");
            }
        }
    }
}

/// Strided copies (a stride-2 conv's input rows) against their definition, the source ending
/// exactly at the last value read so the vector path's masked loads must stop there.
#[test]
fn strided_copies_match_their_definition() {
    use maskfr_core::kernels::gemm::copy_strided;
    for step in 1..=3 {
        for n in 0..40 {
            let src: Vec<f32> = randn(if n == 0 { 0 } else { (n - 1) * step + 1 }, 10);
            let mut dst = vec![f32::NAN; n];
            copy_strided(&mut dst, &src, step);
            for (t, d) in dst.iter().enumerate() {
                assert_eq!(*d, src[t * step], "step {step}, {n} values, at {t}");
            }
        }
    }
}
