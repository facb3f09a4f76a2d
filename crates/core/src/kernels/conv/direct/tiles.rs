//! The forward (column stride 1 or 2) and the stride-1 input gradient: tiles of up to 14
//! output positions × OCB channels over bands of padded input rows.

use super::super::ConvGeom;
use super::layout::{pad_band, Out, Weights, OCB};
use crate::kernels::gemm::x86::columns16;
use rayon::prelude::*;
use std::arch::x86_64::*;

/// Output positions of one row per kernel call at most: 14 × 2 accumulator vectors.
const COLS: usize = 14;
/// Bytes of padded input rows a thread holds at once (beside one channel block's
/// weights, within a 1 MiB L2).
const BAND_BYTES: usize = 256 << 10;

/// What a kernel call needs to know of the band and the output.
struct Shape {
    c: usize,
    kh: usize,
    kw: usize,
    /// Row length of the padded band.
    wp: usize,
    /// Band values from one output row to the next: stride × wp.
    row_step: usize,
    /// Values per channel of the padded band.
    plane: usize,
    /// Values per channel of the output.
    ohw: usize,
}

/// A tile kernel: (band shape, band, weights, bias, output, live channels).
type Kernel = unsafe fn(&Shape, *const f32, *const f32, *const f32, *mut f32, usize);

/// The kernels at column stride S: tiles of one row by width 1..=COLS, and tiles of as
/// many whole rows as fit in COLS positions by row width 1..=COLS/2 (a one-row tile of a
/// 7-wide output would hold 14 accumulators and load a weight vector per 7 FMAs:
/// measured 18% slower than the GEMM path at 512@7²).
macro_rules! kernels {
    ($s:literal) => {
        Kernels {
            row: [
                tile::<1, 1, $s>,
                tile::<2, 2, $s>,
                tile::<3, 3, $s>,
                tile::<4, 4, $s>,
                tile::<5, 5, $s>,
                tile::<6, 6, $s>,
                tile::<7, 7, $s>,
                tile::<8, 8, $s>,
                tile::<9, 9, $s>,
                tile::<10, 10, $s>,
                tile::<11, 11, $s>,
                tile::<12, 12, $s>,
                tile::<13, 13, $s>,
                tile::<14, 14, $s>,
            ],
            rows: [
                tile::<14, 1, $s>,
                tile::<14, 2, $s>,
                tile::<12, 3, $s>,
                tile::<12, 4, $s>,
                tile::<10, 5, $s>,
                tile::<12, 6, $s>,
                tile::<14, 7, $s>,
            ],
        }
    };
}

struct Kernels {
    row: [Kernel; COLS],
    rows: [Kernel; COLS / 2],
}

/// By column stride 1 and 2.
const KERNELS: [Kernels; 2] = [kernels!(1), kernels!(2)];

/// A band's tiles: (first row, first column, kernel), covering `rows × ow`.
fn tiles(rows: usize, ow: usize, k: &Kernels) -> Vec<(usize, usize, Kernel)> {
    let per = if ow <= COLS / 2 { COLS / ow } else { 1 };
    let mut out = Vec::new();
    let mut r = 0;
    while r < rows {
        if per > 1 && rows - r >= per {
            out.push((r, 0, k.rows[ow - 1]));
            r += per;
            continue;
        }
        out.extend((0..ow).step_by(COLS).map(|ox| (r, ox, k.row[COLS.min(ow - ox) - 1])));
        r += 1;
    }
    out
}

/// `y[n, o, oy, ox] = bias[o] + Σ_(c, ki, kj) w[o, c, ki, kj] · xpad[n, c, oy·sh + ki, ox·sw + kj]`
/// (xpad: x padded by (ph, pw)). Threads take bands of output rows of one
/// image; every output is summed by one kernel call in one order, whatever the threads.
pub(super) fn conv(g: &ConvGeom, x: &[f32], w: &Weights, bias: Option<&[f32]>, y: &mut [f32]) {
    assert!(x.len() >= g.n * g.c * g.h * g.w && y.len() >= g.n * g.o * g.oh * g.ow, "direct conv: buffers");
    let wp = (g.ow - 1) * g.sw + g.kw;
    let threads = rayon::current_num_threads();
    // Output rows whose input rows, (rows − 1)·sh + kh, fit in BAND_BYTES.
    let band = ((BAND_BYTES / (4 * g.c * wp)).saturating_sub(g.kh) / g.sh + 1)
        .min(g.oh.div_ceil(threads.div_ceil(g.n.max(1))));
    let bands = g.oh.div_ceil(band);
    let blocks = g.o.div_ceil(OCB);
    let mut b = vec![0.0f32; blocks * OCB];
    if let Some(bias) = bias {
        b[..g.o].copy_from_slice(&bias[..g.o]);
    }
    let out = Out(y.as_mut_ptr());
    (0..g.n * bands).into_par_iter().for_each_init(Vec::new, |pad, unit| {
        let (img, oy0) = (unit / bands, unit % bands * band);
        let rows = band.min(g.oh - oy0);
        let prow = (rows - 1) * g.sh + g.kh;
        pad.resize(g.c * prow * wp, 0.0);
        pad_band(g, x, img, oy0 * g.sh, prow, wp, pad);
        let row_step = g.sh * wp;
        let s = Shape { c: g.c, kh: g.kh, kw: g.kw, wp, row_step, plane: prow * wp, ohw: g.oh * g.ow };
        let tiles = tiles(rows, g.ow, &KERNELS[g.sw - 1]);
        for blk in 0..blocks {
            let live = OCB.min(g.o - blk * OCB);
            for &(r, ox, kernel) in &tiles {
                let at = ((img * g.o + blk * OCB) * g.oh + oy0 + r) * g.ow + ox;
                // SAFETY: a tile reads the band from output row r, column ox on: the
                // input rows and columns of its outputs' taps lie inside the band of
                // every channel; it writes `live` channel rows of its outputs, all in
                // this unit's rows, which no other unit writes.
                unsafe {
                    kernel(
                        &s,
                        pad.as_ptr().add(r * row_step + ox * g.sw),
                        w.block(blk).as_ptr(),
                        b.as_ptr().add(blk * OCB),
                        out.at(at),
                        live,
                    )
                };
            }
        }
    });
}

/// One tile: N output positions, W to a row (a row's positions are contiguous in the
/// output: a tile is part of one row or whole rows), S input columns apart, from `x` (the
/// band at the tile's first position, channel 0, kernel row 0) × OCB channels from the
/// weight block `w`, starting from `bias`, stored transposed into `live` channel rows of
/// the output at `y`.
///
/// # Safety
/// As in [`conv`]: every read inside the band and weights, every write inside `y`.
#[target_feature(enable = "avx512f")]
unsafe fn tile<const N: usize, const W: usize, const S: usize>(
    s: &Shape,
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    y: *mut f32,
    live: usize,
) {
    // A position's two vectors side by side (the halves as two arrays of N spilled: 7²
    // ran at a third of the speed).
    let mut acc = [[_mm512_loadu_ps(bias), _mm512_loadu_ps(bias.add(16))]; N];
    let mut wv = w;
    for ci in 0..s.c {
        for ki in 0..s.kh {
            let row = x.add(ci * s.plane + ki * s.wp);
            for kj in 0..s.kw {
                let (w0, w1) = (_mm512_load_ps(wv), _mm512_load_ps(wv.add(16)));
                wv = wv.add(OCB);
                for (j, a) in acc.iter_mut().enumerate() {
                    let v = _mm512_set1_ps(*row.add(j / W * s.row_step + j % W * S + kj));
                    a[0] = _mm512_fmadd_ps(v, w0, a[0]);
                    a[1] = _mm512_fmadd_ps(v, w1, a[1]);
                }
            }
        }
    }
    // Lane k of column j of the 16 × 16 transposes is channel k's output at position j.
    let lanes = ((1u32 << N) - 1) as __mmask16;
    for h in 0..2 {
        let cols = columns16(std::array::from_fn(|j| acc.get(j).map_or(_mm512_setzero_ps(), |a| a[h])));
        for (k, col) in cols.into_iter().enumerate().take(live.saturating_sub(16 * h)) {
            _mm512_mask_storeu_ps(y.add((16 * h + k) * s.ohw), lanes, col);
        }
    }
}
