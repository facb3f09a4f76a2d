//! The shipped f32 conv (AVX-512 kernels where present) against the f64 implicit-GEMM path
//! (checked by finite differences and a naive conv in gradcheck.rs), on shapes big enough
//! for every path: the direct stride-1 convs (tile widths, whole-row tiles, bands of rows, a
//! partial block of channels, forward and flipped kernels, stride 2, 3×3 weight gradients
//! split by channel blocks and ranges); dense, two-piece
//! (image-crossing) and half-width tile stores, stride-3 gathers and segments, the 3×3
//! stride-2 input gradient's parity tiles, and the chunked col2im of other strided input
//! gradients.
//! Tolerance: max|f32 − f64| ≤ 1e-5 · max|f64|, NaN fails.

use maskfr_core::kernels::conv::{self, ConvGeom};
use maskfr_core::{random, Float};

fn randn<T: Float>(n: usize, seed: u64) -> Vec<T> {
    (0..n).map(|i| T::c(random::normal(seed, i as u64))).collect()
}

/// The three results (the forward with a bias), each written over NaN: the kernels overwrite their outputs (the CPU
/// backend hands them reused, unzeroed buffers), so a missed or accumulated element fails.
fn all<T: Float>(g: &ConvGeom, x: &[T], w: &[T], b: &[T], gy: &[T]) -> [Vec<T>; 3] {
    let nan = T::c(f64::NAN);
    let mut y = vec![nan; gy.len()];
    conv::conv2d_forward(g, x, w, Some(b), &mut y);
    let mut gx = vec![nan; x.len()];
    conv::conv2d_backward_input(g, gy, w, &mut gx);
    let mut gw = vec![nan; w.len()];
    conv::conv2d_backward_weight(g, gy, x, &mut gw);
    [y, gx, gw]
}

fn case(x: [usize; 4], w: [usize; 4], s: usize, p: usize) {
    let g = ConvGeom::new(&x, &w, [s, s], [p, p]).unwrap();
    let out: usize = g.out_shape().iter().product();
    let (xs, ws, gys) = (x.iter().product(), w.iter().product(), out);
    let f32s = all::<f32>(&g, &randn(xs, 1), &randn(ws, 2), &randn(w[0], 4), &randn(gys, 3));
    let f64s = all::<f64>(&g, &randn(xs, 1), &randn(ws, 2), &randn(w[0], 4), &randn(gys, 3));
    for (name, (a, e)) in ["forward", "input gradient", "weight gradient"].iter().zip(f32s.iter().zip(&f64s)) {
        let finite = a.iter().all(|v| v.is_finite()) && e.iter().all(|v| v.is_finite());
        assert!(finite, "x{x:?} w{w:?} s{s} p{p} {name}: a value is not finite");
        let scale = e.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = a.iter().zip(e).fold(0.0f64, |m, (a, e)| m.max((*a as f64 - e).abs()));
        assert!(err <= 1e-5 * scale, "x{x:?} w{w:?} s{s} p{p} {name}: max error {err:e} vs scale {scale}");
    }
}

#[test]
fn f32_conv_agrees_with_f64() {
    case([3, 16, 20, 20], [24, 16, 3, 3], 1, 1); // direct: a 14-wide tile and a tail of 6, 24 of 32 channels
    case([2, 8, 7, 7], [16, 8, 3, 3], 1, 1); // direct: 7-wide rows two to a tile, a last single row
    case([16, 8, 13, 13], [16, 8, 3, 3], 2, 1); // direct at stride 2: whole-row tiles of 7×7 outputs
    case([2, 12, 9, 9], [20, 12, 5, 5], 1, 2); // direct: 5×5 taps, 9-wide rows
    case([3, 16, 21, 21], [32, 16, 3, 3], 2, 1); // direct at stride 2: a tile of 11; input gradient tiles of 12 and 9
    case([2, 16, 14, 14], [32, 16, 3, 3], 2, 1); // stride 2, even sizes: the input gradient's padding row and column
    case([2, 16, 23, 23], [16, 16, 3, 3], 3, 1); // stride 3 (implicit GEMM): gathers of 8-wide rows
    case([1, 8, 50, 50], [16, 8, 3, 3], 3, 0); // stride 3: row pieces out of segments
    case([4, 32, 14, 14], [64, 32, 1, 1], 2, 0); // 1×1 stride-2 shortcut: tiles across images, a last half-width panel
    case([3, 40, 15, 15], [24, 40, 1, 1], 2, 0); // subsampled odd sizes, a ragged channel panel
    case([3, 64, 112, 112], [8, 64, 3, 3], 2, 1); // direct bands at stride 2, two blocks of input gradient
    case([3, 16, 21, 21], [32, 16, 3, 3], 2, 0); // stride 2 unpadded: col2im
    case([3, 64, 112, 112], [8, 64, 3, 3], 2, 0); // unpadded: col2im in several chunks of images
    case([2, 16, 11, 13], [40, 16, 3, 5], 1, 1); // direct: 3×5 taps, rows of 11 (one tile), 40 channels
    case([1, 64, 60, 60], [24, 64, 3, 3], 1, 1); // direct: bands of rows, 14-wide tiles and a tail of 4
    case([3, 16, 7, 4], [32, 16, 3, 3], 1, 1); // direct: tiles of three whole rows, a last single row
}

/// Every path claims results independent of the thread count: bit-identical on 1, 2 and 3
/// threads (direct tiles split by bands and channel blocks; weight gradients by blocks and
/// channel ranges; the implicit GEMM by columns).
#[test]
fn f32_conv_is_the_same_on_1_2_3_threads() {
    for (x, w, s, p) in [
        ([3, 16, 20, 20], [40, 16, 3, 3], 1, 1),
        ([2, 16, 13, 13], [72, 16, 3, 3], 2, 1),
        ([2, 8, 17, 17], [16, 8, 3, 3], 3, 1),
        ([4, 32, 14, 14], [64, 32, 1, 1], 2, 0),
    ] {
        let g = ConvGeom::new(&x, &w, [s, s], [p, p]).unwrap();
        let out: usize = g.out_shape().iter().product();
        let (xs, ws) = (randn(x.iter().product(), 1), randn(w.iter().product(), 2));
        let (b, gy) = (randn(w[0], 4), randn(out, 3));
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| all::<f32>(&g, &xs, &ws, &b, &gy))
        };
        let one = on(1);
        for threads in [2, 3] {
            for (name, (a, e)) in
                ["forward", "input gradient", "weight gradient"].iter().zip(on(threads).iter().zip(&one))
            {
                let same = a.iter().zip(e).all(|(a, e)| a.to_bits() == e.to_bits());
                assert!(same, "x{x:?} w{w:?} s{s}: {name} on {threads} threads differs from 1 thread");
            }
        }
    }
}
