//! The input gradient of a 3×3 conv at stride 2, padding 1: tiles of both column parities.

use super::super::ConvGeom;
use super::layout::{pad_band, Out, Weights, OCB};
use crate::kernels::gemm::x86::columns16;
use rayon::prelude::*;
use std::arch::x86_64::*;

/// `gx[n, c, iy, ix] = Σ_(o, ki, kj) w[o, c, ki, kj] · gy[n, o, oy, ox]` over the taps with
/// iy = 2·oy + ki − 1 and ix = 2·ox + kj − 1 (a 3×3 conv at stride 2, padding 1). An
/// even column ix = 2u takes tap kj = 1 at ox = u; an odd one, 2u + 1, takes kj = 0 at
/// u + 1 and kj = 2 at u; rows likewise. A tile holds COLS_S2 consecutive columns of one
/// row × OCB input channels, both parities, so it is stored as one contiguous piece,
/// and reads gy (zero-padded by a row and columns at the end) by broadcasts: no column
/// matrix, no fold. Threads take images.
pub(super) fn input_grad_s2(g: &ConvGeom, gy: &[f32], w: &[f32], gx: &mut [f32]) {
    assert!(
        gy.len() >= g.n * g.o * g.oh * g.ow && gx.len() >= g.n * g.c * g.h * g.w && w.len() >= g.o * g.c * 9,
        "direct conv strided input gradient: buffers"
    );
    let weights = Weights::transposed(w, g.o, g.c, 9, false);
    // gy rows up to H/2 and columns up to (W + 1)/2 are read (a tile of an odd number of
    // columns computes one more).
    let (hp, wp) = (g.oh + 1, g.w.div_ceil(2) + 1);
    let tiles = s2_tiles(g.w);
    let (hw, blocks) = (g.h * g.w, g.c.div_ceil(OCB));
    let gyg = ConvGeom { c: g.o, h: g.oh, w: g.ow, ph: 0, pw: 0, ..*g };
    let out = Out(gx.as_mut_ptr());
    (0..g.n).into_par_iter().for_each_init(Vec::new, |pad, img| {
        pad.resize(g.o * hp * wp, 0.0);
        pad_band(&gyg, gy, img, 0, hp, wp, pad);
        for blk in 0..blocks {
            let live = OCB.min(g.c - blk * OCB);
            for iy in 0..g.h {
                // (ki, offset of the gy row) of the row's taps.
                let taps = [(1, iy / 2 * wp), (0, iy.div_ceil(2) * wp), (2, iy / 2 * wp)];
                let taps = if iy % 2 == 0 { &taps[..1] } else { &taps[1..] };
                for &(x0, cols) in &tiles {
                    let s = S2 { o: g.o, plane: hp * wp, hw, cols };
                    let at = ((img * g.c + blk * OCB) * g.h + iy) * g.w + x0;
                    // SAFETY: the tile reads gy columns x0/2 ..= (x0 + cols + 1)/2 < wp
                    // of rows ≤ H/2 < hp of every channel, and the weight block; it
                    // writes `live` channel rows of `cols` outputs of this image's row iy.
                    unsafe {
                        S2_KERNELS[cols.div_ceil(2) - 1](
                            &s,
                            pad.as_ptr().add(x0 / 2),
                            taps,
                            weights.block(blk).as_ptr(),
                            out.at(at),
                            live,
                        )
                    };
                }
            }
        }
    });
}

/// Output columns of a strided input-gradient tile at most: 6 of each parity, so that 24
/// accumulators, a weight pair and a broadcast fit in the 32 registers.
const COLS_S2: usize = 12;

/// The tile kernels by half width 1..=COLS_S2/2.
type S2Fn = unsafe fn(&S2, *const f32, &[(usize, usize)], *const f32, *mut f32, usize);
const S2_KERNELS: [S2Fn; COLS_S2 / 2] =
    [tile_s2::<2>, tile_s2::<4>, tile_s2::<6>, tile_s2::<8>, tile_s2::<10>, tile_s2::<12>];

/// A row's tiles (first column, columns): as few as COLS_S2 allows, of even widths as
/// equal as may be (14 columns as 12 + 2 spent 40% of the work on the 2; as 8 + 6 none).
fn s2_tiles(w: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut x0, mut k) = (0, w.div_ceil(COLS_S2));
    while x0 < w {
        let cols = (w - x0).div_ceil(k).next_multiple_of(2).min(w - x0);
        out.push((x0, cols));
        (x0, k) = (x0 + cols, k - 1);
    }
    out
}

/// What a strided input-gradient tile needs to know.
struct S2 {
    /// gy channels.
    o: usize,
    /// Values per channel of the padded gy.
    plane: usize,
    /// Values per channel of gx.
    hw: usize,
    /// Columns stored (the last tile of a row may be narrower).
    cols: usize,
}

/// One tile of [`input_grad_s2`]: N consecutive columns from an even one, of one gx row
/// whose taps `rows` are (ki, offset of their gy row in the padded plane), `gy` at the
/// tile's first gy column of channel 0.
///
/// # Safety
/// As in [`input_grad_s2`].
#[target_feature(enable = "avx512f")]
unsafe fn tile_s2<const N: usize>(
    s: &S2,
    gy: *const f32,
    rows: &[(usize, usize)],
    w: *const f32,
    y: *mut f32,
    live: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; N];
    let wv = |o: usize, t: usize| {
        let p = w.add((o * 9 + t) * OCB);
        [_mm512_load_ps(p), _mm512_load_ps(p.add(16))]
    };
    for o in 0..s.o {
        for &(ki, at) in rows {
            let r = gy.add(o * s.plane + at);
            let (w0, w1, w2) = (wv(o, ki * 3), wv(o, ki * 3 + 1), wv(o, ki * 3 + 2));
            for (u, pair) in acc.chunks_exact_mut(2).enumerate() {
                let (here, next) = (_mm512_set1_ps(*r.add(u)), _mm512_set1_ps(*r.add(u + 1)));
                for h in 0..2 {
                    pair[0][h] = _mm512_fmadd_ps(here, w1[h], pair[0][h]);
                    pair[1][h] = _mm512_fmadd_ps(next, w0[h], pair[1][h]);
                    pair[1][h] = _mm512_fmadd_ps(here, w2[h], pair[1][h]);
                }
            }
        }
    }
    // Stored as `tiles::tile` stores (one helper taking the accumulators by reference
    // made both keep them in memory: 40% of the speed, measured).
    let lanes = ((1u32 << s.cols) - 1) as __mmask16;
    for h in 0..2 {
        let cols = columns16(std::array::from_fn(|j| acc.get(j).map_or(_mm512_setzero_ps(), |a| a[h])));
        for (k, col) in cols.into_iter().enumerate().take(live.saturating_sub(16 * h)) {
            _mm512_mask_storeu_ps(y.add((16 * h + k) * s.hw), lanes, col);
        }
    }
}
