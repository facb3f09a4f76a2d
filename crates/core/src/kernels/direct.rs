//! Convolutions computed directly (f32 on AVX-512): the forward at column stride 1 or 2 and
//! the stride-1 input gradient as tiles of up to 14 output positions × 32 channels, the
//! channels in vectors and each position's input value broadcast, so the input needs no
//! im2col panels, only a zero-padded copy of a band of rows that stays in L2, and the
//! weights one reordering per call; the 3×3 stride-2 input gradient as tiles of both
//! column parities; the 3×3 weight gradient as tiles of 9 taps × 32 channels summed over
//! every position. The implicit-GEMM path packs every input value into
//! a panel once per tap: a tenth to a fifth of a 3×3 conv at 14²–28² (profiled), which
//! these do not pay.

use super::conv::ConvGeom;
use crate::Float;

/// Output channels (a tile's lanes, of 32) below which the implicit GEMM is faster: the
/// tiny IResNet's convs with 8 lose 20–40% direct, with 16 gain 5–30% (measured A/B). The
/// strided input gradient has no such floor: it beats the column matrix and fold even with
/// 8 channels (48 vs 18 GFLOP/s at 8→8 @112²).
#[cfg(target_arch = "x86_64")]
const MIN_LANES: usize = 16;

/// `y = conv(x, w) + bias` directly, when the geometry and the CPU allow; false (nothing
/// written) otherwise.
pub fn try_forward<T: Float>(g: &ConvGeom, x: &[T], w: &[T], bias: Option<&[T]>, y: &mut [T]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if x86::usable::<T>(g) && g.o >= MIN_LANES {
        let weights = x86::Weights::forward(x86::f32s(w), g.o, g.c, g.kh * g.kw);
        x86::conv(g, x86::f32s(x), &weights, bias.map(x86::f32s), x86::f32s_mut(y));
        return true;
    }
    let _ = (g, x, w, bias, y);
    false
}

/// The stride-1 input gradient of conv `g` from `gy`: the direct conv `gt` of `gy` with the
/// kernel flipped in space and transposed in channels; false (nothing written) when the
/// direct path does not apply.
pub fn try_backward_input<T: Float>(g: &ConvGeom, gt: &ConvGeom, gy: &[T], w: &[T], gx: &mut [T]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if x86::usable::<T>(gt) && gt.o >= MIN_LANES {
        let weights = x86::Weights::flipped(x86::f32s(w), g.o, g.c, g.kh * g.kw);
        x86::conv(gt, x86::f32s(gy), &weights, None, x86::f32s_mut(gx));
        return true;
    }
    let _ = (g, gt, gy, w, gx);
    false
}

/// The input gradient of a 3×3 conv at stride 2, padding 1 (IResNet's downsampling)
/// directly; false (nothing written) when the direct path does not apply.
pub fn try_backward_input_strided<T: Float>(g: &ConvGeom, gy: &[T], w: &[T], gx: &mut [T]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if x86::usable::<T>(g) && (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw) == (3, 3, 2, 2, 1, 1) {
        x86::input_grad_s2(g, x86::f32s(gy), x86::f32s(w), x86::f32s_mut(gx));
        return true;
    }
    let _ = (g, gy, w, gx);
    false
}

/// `gw = Σ gy · X̂ᵀ` (the weight gradient) directly for 3×3 kernels; false (nothing
/// written) when the direct path does not apply.
pub fn try_backward_weight<T: Float>(g: &ConvGeom, gy: &[T], x: &[T], gw: &mut [T]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if x86::usable::<T>(g) && (g.kh, g.kw) == (3, 3) && g.o >= MIN_LANES {
        x86::weight_grad(g, x86::f32s(gy), x86::f32s(x), x86::f32s_mut(gw));
        return true;
    }
    let _ = (g, gy, x, gw);
    false
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::conv::ConvGeom;
    use super::super::tiled::{transpose_into_panel, x86::columns16, NR};
    use crate::{pool, Float};
    use rayon::prelude::*;
    use std::any::TypeId;
    use std::arch::x86_64::*;

    /// Output positions of one row per kernel call at most: 14 × 2 accumulator vectors.
    const COLS: usize = 14;
    /// Output channels per kernel call: two vectors of f32, the GEMM panel's width (the
    /// weights are transposed into its layout).
    const OCB: usize = NR;
    /// Bytes of padded input rows a thread holds at once (beside one channel block's
    /// weights, within a 1 MiB L2).
    const BAND_BYTES: usize = 256 << 10;

    /// f32 on AVX-512, column stride 1 or 2, a kernel of more than one tap (1×1 convs are
    /// plain products, fast already), padding inside the kernel.
    pub fn usable<T: Float>(g: &ConvGeom) -> bool {
        TypeId::of::<T>() == TypeId::of::<f32>()
            && is_x86_feature_detected!("avx512f")
            && (1..=2).contains(&g.sw)
            && g.kh * g.kw > 1
            && g.ph < g.kh
            && g.pw < g.kw
            && g.c.max(g.o) * g.kh * g.kw * OCB <= i32::MAX as usize
    }

    pub fn f32s<T: Float>(v: &[T]) -> &[f32] {
        assert_eq!(TypeId::of::<T>(), TypeId::of::<f32>());
        // SAFETY: T is f32 (asserted).
        unsafe { std::slice::from_raw_parts(v.as_ptr() as *const f32, v.len()) }
    }

    pub fn f32s_mut<T: Float>(v: &mut [T]) -> &mut [f32] {
        assert_eq!(TypeId::of::<T>(), TypeId::of::<f32>());
        // SAFETY: T is f32 (asserted).
        unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut f32, v.len()) }
    }

    /// Weights as the kernel reads them: per block of OCB output channels, for each input
    /// channel and tap in order, the block's OCB values (zero past the last channel); each
    /// block 64-byte aligned, so a vector load never splits a cache line.
    pub struct Weights {
        data: Aligned,
        block: usize,
    }

    impl Weights {
        /// From `w [O, C, KK]`: block `b`, row `(c, t)`, lane `l` is `w[b·OCB + l, c, t]`,
        /// by 16 × 16 transposes in registers.
        pub fn forward(w: &[f32], o: usize, c: usize, kk: usize) -> Weights {
            let ckk = c * kk;
            Weights::new(o, ckk, |b, live, out| {
                transpose_into_panel(&w[b * OCB * ckk..][..live * ckk], ckk, live, ckk, out);
                if live < OCB {
                    out.chunks_exact_mut(OCB).for_each(|row| row[live..].fill(0.0));
                }
            })
        }

        /// The stride-1 input gradient's kernel from `w [O, C, KK]`, whose output channels are
        /// C and input channels O: block `b`, row `(o, t)`, lane `l` is `w[o, b·OCB + l, KK−1−t]`.
        pub fn flipped(w: &[f32], o: usize, c: usize, kk: usize) -> Weights {
            Weights::transposed(w, o, c, kk, true)
        }

        /// From `w [O, C, KK]` with output and input channels swapped: block `b`, row
        /// `(o, t)`, lane `l` is `w[o, b·OCB + l, t]`, or tap `KK − 1 − t` when `flip`; by
        /// gathers (a row's lanes lie KK apart).
        fn transposed(w: &[f32], o: usize, c: usize, kk: usize, flip: bool) -> Weights {
            Weights::new(c, o * kk, |b, live, out| {
                for (row, dst) in out.chunks_exact_mut(OCB).enumerate() {
                    let t = if flip { kk - 1 - row % kk } else { row % kk };
                    let at = (row / kk * c + b * OCB) * kk + t;
                    assert!(at + (live - 1) * kk < w.len(), "direct conv weights: read past the kernel");
                    // SAFETY: live lanes read below w.len() (asserted); dst holds OCB.
                    unsafe { gather_row(w.as_ptr().add(at), kk, live, dst.as_mut_ptr()) };
                }
            })
        }

        /// `⌈channels/OCB⌉` blocks of `rows × OCB` values, each written whole (dead lanes as
        /// zeros) by `fill(block, live lanes, values)`, blocks in parallel.
        fn new(channels: usize, rows: usize, fill: impl Fn(usize, usize, &mut [f32]) + Sync) -> Weights {
            let (block, blocks) = (rows * OCB, channels.div_ceil(OCB));
            let mut data = Aligned::new(blocks * block);
            data.get_mut()
                .par_chunks_mut(block)
                .enumerate()
                .for_each(|(b, out)| fill(b, OCB.min(channels - b * OCB), out));
            Weights { data, block }
        }

        fn block(&self, b: usize) -> &[f32] {
            &self.data.get()[b * self.block..][..self.block]
        }
    }

    /// `len` values starting 64-byte aligned (a vector load of them never splits a cache
    /// line), from the pool and back: every user writes all of them before reading, so
    /// a pooled buffer is not zeroed first.
    struct Aligned {
        data: Vec<f32>,
        first: usize,
        len: usize,
    }

    impl Aligned {
        fn new(len: usize) -> Aligned {
            let data = pool::scratch(len + 16);
            Aligned { first: data.as_ptr().align_offset(64), data, len }
        }
        fn get(&self) -> &[f32] {
            &self.data[self.first..][..self.len]
        }
        fn get_mut(&mut self) -> &mut [f32] {
            &mut self.data[self.first..][..self.len]
        }
    }

    impl Drop for Aligned {
        fn drop(&mut self) {
            pool::give(std::mem::take(&mut self.data));
        }
    }

    /// `gx[n, c, iy, ix] = Σ_(o, ki, kj) w[o, c, ki, kj] · gy[n, o, oy, ox]` over the taps with
    /// iy = 2·oy + ki − 1 and ix = 2·ox + kj − 1 (a 3×3 conv at stride 2, padding 1). An
    /// even column ix = 2u takes tap kj = 1 at ox = u; an odd one, 2u + 1, takes kj = 0 at
    /// u + 1 and kj = 2 at u; rows likewise. A tile holds COLS_S2 consecutive columns of one
    /// row × OCB input channels, both parities, so it is stored as one contiguous piece,
    /// and reads gy (zero-padded by a row and columns at the end) by broadcasts: no column
    /// matrix, no fold. Threads take images.
    pub fn input_grad_s2(g: &ConvGeom, gy: &[f32], w: &[f32], gx: &mut [f32]) {
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
        let lanes = ((1u32 << s.cols) - 1) as __mmask16;
        for h in 0..2 {
            let cols = columns16(std::array::from_fn(|j| acc.get(j).map_or(_mm512_setzero_ps(), |a| a[h])));
            for (k, col) in cols.into_iter().enumerate().take(live.saturating_sub(16 * h)) {
                _mm512_mask_storeu_ps(y.add((16 * h + k) * s.hw), lanes, col);
            }
        }
    }

    /// `gw [O, C, 3, 3] = Σ_(n, oy, ox) gy[n, o, oy, ox] · xpad[n, c, oy·sh + ki, ox·sw + kj]`.
    /// A tile holds one input channel's 9 taps × OCB output channels and runs over every
    /// position of an image: per position two vectors of gy (laid out position-major for the
    /// block, once per image) and 9 broadcasts of the padded input. Threads take blocks of
    /// output channels (and, when there are fewer blocks than threads, ranges of input
    /// channels), each summing its part over the images in order: the result does not depend
    /// on the threads. The implicit GEMM packed every input value 9 times per thread here,
    /// a fifth of the time at 28².
    pub fn weight_grad(g: &ConvGeom, gy: &[f32], x: &[f32], gw: &mut [f32]) {
        let (ohw, kk) = (g.oh * g.ow, 9);
        assert!(
            gy.len() >= g.n * g.o * ohw && x.len() >= g.n * g.c * g.h * g.w && gw.len() >= g.o * g.c * kk,
            "direct conv weight gradient: buffers"
        );
        let (hp, wp) = ((g.oh - 1) * g.sh + 3, (g.ow - 1) * g.sw + 3);
        let plane = hp * wp;
        let mut padded = Aligned::new(g.n * g.c * plane);
        padded.get_mut().par_chunks_mut(g.c * plane).enumerate().for_each(|(img, p)| pad_band(g, x, img, 0, hp, wp, p));
        let padded = padded.get();
        let blocks = g.o.div_ceil(OCB);
        let chunks = rayon::current_num_threads().div_ceil(blocks).min(g.c);
        let out = Out(gw.as_mut_ptr());
        let tile = [grad_tile::<1>, grad_tile::<2>][g.sw - 1];
        (0..blocks * chunks).into_par_iter().for_each(|unit| {
            let (blk, chunk) = (unit / chunks, unit % chunks);
            let (o0, live) = (blk * OCB, OCB.min(g.o - blk * OCB));
            let cs = chunk * g.c / chunks..(chunk + 1) * g.c / chunks;
            let mut gyt = Aligned::new(ohw * OCB);
            let mut acc = vec![0.0f32; cs.len() * kk * OCB];
            let s = GradShape { wp, row_step: g.sh * wp, oh: g.oh, ow: g.ow };
            for img in 0..g.n {
                let gyt = gyt.get_mut();
                transpose_into_panel(&gy[(img * g.o + o0) * ohw..][..live * ohw], ohw, live, ohw, gyt);
                if live < OCB {
                    gyt.chunks_exact_mut(OCB).for_each(|row| row[live..].fill(0.0));
                }
                for (ci, sums) in cs.clone().zip(acc.chunks_exact_mut(kk * OCB)) {
                    let band = &padded[(img * g.c + ci) * plane..][..plane];
                    // SAFETY: the tile reads `plane` values of the band, ohw × OCB of gyt
                    // and writes kk × OCB sums.
                    unsafe { tile(&s, band.as_ptr(), gyt.as_ptr(), sums.as_mut_ptr()) };
                }
            }
            for (ci, sums) in cs.zip(acc.chunks_exact(kk * OCB)) {
                for l in 0..live {
                    for t in 0..kk {
                        // SAFETY: (o0 + l, ci, t) lies in gw (asserted above) and belongs to
                        // this unit's block and channel range only.
                        unsafe { *out.at(((o0 + l) * g.c + ci) * kk + t) = sums[t * OCB + l] };
                    }
                }
            }
        });
    }

    /// What a weight-gradient tile needs to know of the padded plane and the output grid.
    struct GradShape {
        wp: usize,
        /// Plane values from one output row's input row to the next: sh × wp.
        row_step: usize,
        oh: usize,
        ow: usize,
    }

    /// `sums[t·OCB + l] += Σ_(oy, ox) gy[(oy·ow + ox)·OCB + l] · x[oy·row_step + ox·S + ki·wp + kj]`
    /// for the 9 taps t = (ki, kj).
    ///
    /// # Safety
    /// `x` must hold the plane the taps read, `gy` oh·ow·OCB values, `sums` 9·OCB.
    #[target_feature(enable = "avx512f")]
    unsafe fn grad_tile<const S: usize>(s: &GradShape, x: *const f32, gy: *const f32, sums: *mut f32) {
        let mut acc: [[__m512; 2]; 9] =
            std::array::from_fn(|t| [_mm512_loadu_ps(sums.add(t * OCB)), _mm512_loadu_ps(sums.add(t * OCB + 16))]);
        for oy in 0..s.oh {
            let rows = [0, 1, 2].map(|ki| x.add(oy * s.row_step + ki * s.wp));
            let g = gy.add(oy * s.ow * OCB);
            for ox in 0..s.ow {
                let (g0, g1) = (_mm512_load_ps(g.add(ox * OCB)), _mm512_load_ps(g.add(ox * OCB + 16)));
                for (t, a) in acc.iter_mut().enumerate() {
                    let v = _mm512_set1_ps(*rows[t / 3].add(ox * S + t % 3));
                    a[0] = _mm512_fmadd_ps(v, g0, a[0]);
                    a[1] = _mm512_fmadd_ps(v, g1, a[1]);
                }
            }
        }
        for (t, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(sums.add(t * OCB), a[0]);
            _mm512_storeu_ps(sums.add(t * OCB + 16), a[1]);
        }
    }

    /// `dst[l] = src[l·stride]` for the `live` first of OCB lanes, zero for the rest.
    #[target_feature(enable = "avx512f")]
    unsafe fn gather_row(src: *const f32, stride: usize, live: usize, dst: *mut f32) {
        let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for h in 0..OCB / 16 {
            let idx = _mm512_mullo_epi32(
                _mm512_add_epi32(lanes, _mm512_set1_epi32(16 * h as i32)),
                _mm512_set1_epi32(stride as i32),
            );
            let mask = (((1u32 << live.saturating_sub(16 * h).min(16)) - 1) & 0xffff) as __mmask16;
            let v = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, idx, src);
            _mm512_storeu_ps(dst.add(16 * h), v);
        }
    }

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
    pub fn conv(g: &ConvGeom, x: &[f32], w: &Weights, bias: Option<&[f32]>, y: &mut [f32]) {
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

    /// The output pointer, shared by threads that write disjoint rows.
    struct Out(*mut f32);
    // SAFETY: see `conv`: units write disjoint output rows.
    unsafe impl Sync for Out {}
    unsafe impl Send for Out {}

    impl Out {
        /// # Safety
        /// `i` must lie inside the output.
        unsafe fn at(&self, i: usize) -> *mut f32 {
            self.0.add(i)
        }
    }

    /// `pad [C, prow, wp]` = input rows `iy0 − ph ..` of image `img` from column `−pw` on,
    /// zero outside the image.
    fn pad_band(g: &ConvGeom, x: &[f32], img: usize, iy0: usize, prow: usize, wp: usize, pad: &mut [f32]) {
        for (i, row) in pad.chunks_exact_mut(wp).enumerate() {
            let (ci, iy) = (i / prow, (iy0 + i % prow) as isize - g.ph as isize);
            if iy < 0 || iy >= g.h as isize {
                row.fill(0.0);
                continue;
            }
            // A strided conv may leave the last columns unread: wp − pw < w.
            let len = g.w.min(wp - g.pw);
            row[..g.pw].fill(0.0);
            row[g.pw..g.pw + len].copy_from_slice(&x[((img * g.c + ci) * g.h + iy as usize) * g.w..][..len]);
            row[g.pw + len..].fill(0.0);
        }
    }

    /// One tile: N output positions, W to a row (a row's positions are contiguous in the
    /// output: a tile is part of one row or whole rows), S input columns apart, from `x` (the band at the tile's
    /// first position, channel 0, kernel row 0) × OCB channels from the weight block `w`,
    /// starting from `bias`, stored transposed into `live` channel rows of the output at `y`.
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
}
