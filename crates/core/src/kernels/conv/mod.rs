//! conv2d forward, backward-input and backward-weight, NCHW, any kernel/stride/padding, as
//! implicit GEMMs on [`super::gemm`]: the input is unfolded (im2col) straight into the
//! packed GEMM panels and output tiles are stored straight into NCHW, so no column matrix is
//! ever materialised, except for the backward-input of a strided conv (folded per chunk).
//! In f32 on AVX-512 the forward (column stride 1 or 2), the backward-input of kernels wider
//! than 1×1 at stride 1 (and of 3×3 at stride 2, padding 1) and the backward-weight of 3×3
//! kernels run as direct convs instead ([`direct`]).
//!
//! - forward: `y[o, (n,p)] = Σ_q W[o, q] · X̂[q, (n,p)]` with `X̂` the implicit im2col of x;
//! - backward-input, stride 1: the forward conv of `gy` with the flipped, transposed kernel;
//!   strided: `col = Wᵀ·gy`, folded back (col2im) a chunk of images at a time;
//! - backward-weight: `gW[o, q] = Σ_(n,p) gy[o, (n,p)] · X̂[q, (n,p)]`, every thread summing
//!   its own block of gW over the whole batch: the result does not depend on the thread count.

mod direct;

use super::gemm::{
    a_panels, b_panels, copy_strided, gather_panel_row, gemm, prefetch, transpose_into_a_panel, transpose_into_panel,
    DenseA, DenseC, PackA, PackB, StoreC, Tile, MR, NR,
};
use super::matmul::Mat;
use crate::{ensure, Float, Result};
use rayon::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub oh: usize,
    pub ow: usize,
}

impl ConvGeom {
    /// Checks an input `[N,C,H,W]` against a weight `[O,C,KH,KW]` and derives the output size.
    pub fn new(x: &[usize], w: &[usize], stride: [usize; 2], pad: [usize; 2]) -> Result<ConvGeom> {
        let op = "conv2d";
        ensure!(x.len() == 4, op, "input must be [N,C,H,W], got shape {x:?} (weight {w:?})");
        ensure!(w.len() == 4, op, "weight must be [O,C,KH,KW], got shape {w:?} (input {x:?})");
        ensure!(x[1] == w[1], op, "input shape {x:?} has {} channels but weight shape {w:?} expects {}", x[1], w[1]);
        ensure!(stride[0] > 0 && stride[1] > 0, op, "stride must be positive, got {stride:?}");
        let (hp, wp) = (x[2] + 2 * pad[0], x[3] + 2 * pad[1]);
        ensure!(
            w[2] > 0 && w[3] > 0 && hp >= w[2] && wp >= w[3],
            op,
            "kernel {}x{} does not fit input shape {x:?} with padding {pad:?}",
            w[2],
            w[3]
        );
        Ok(ConvGeom {
            n: x[0],
            c: x[1],
            h: x[2],
            w: x[3],
            o: w[0],
            kh: w[2],
            kw: w[3],
            sh: stride[0],
            sw: stride[1],
            ph: pad[0],
            pw: pad[1],
            oh: (hp - w[2]) / stride[0] + 1,
            ow: (wp - w[3]) / stride[1] + 1,
        })
    }
    pub fn out_shape(&self) -> [usize; 4] {
        [self.n, self.o, self.oh, self.ow]
    }
    fn ckk(&self) -> usize {
        self.c * self.kh * self.kw
    }
    fn ohw(&self) -> usize {
        self.oh * self.ow
    }
    fn chw(&self) -> usize {
        self.c * self.h * self.w
    }
    /// Output columns `ox` whose input column `ox·sw + kj − pw` lies inside the image.
    fn valid_cols(&self, kj: usize) -> (usize, usize) {
        let lo = self.pw.saturating_sub(kj).div_ceil(self.sw);
        let hi = (self.w + self.pw).saturating_sub(kj).div_ceil(self.sw).min(self.ow);
        (lo.min(hi), hi)
    }
    /// A 1×1 kernel at stride 1 without padding: the im2col matrix is the input itself.
    fn pointwise(&self) -> bool {
        (self.kh, self.kw, self.sh, self.sw, self.ph, self.pw) == (1, 1, 1, 1, 0, 0)
    }
    fn input_row(&self, oy: usize, ki: usize) -> Option<usize> {
        (oy * self.sh + ki).checked_sub(self.ph).filter(|&iy| iy < self.h)
    }
}

/// A run of consecutive GEMM columns (or depth positions) inside one output row of one image.
#[derive(Clone, Copy, Default)]
struct Run {
    img: usize,
    oy: usize,
    ox: usize,
    len: usize,
    /// offset of the run's first column within the panel
    at: usize,
}

/// Splits global positions `[j, j + len)` (image-major, then row-major) into row runs.
fn runs(g: &ConvGeom, j: usize, len: usize, out: &mut Vec<Run>) {
    out.clear();
    let (ohw, mut at) = (g.ohw(), 0);
    while at < len {
        let pos = (j + at) % ohw;
        let (oy, ox) = (pos / g.ow, pos % g.ow);
        let n = (g.ow - ox).min(len - at);
        out.push(Run { img: (j + at) / ohw, oy, ox, len: n, at });
        at += n;
    }
}

/// `(channel, ki, kj)` of im2col row `q`.
fn tap(g: &ConvGeom, q: usize) -> (usize, usize, usize) {
    let kk = g.kh * g.kw;
    (q / kk, (q % kk) / g.kw, q % g.kw)
}

/// The implicit im2col matrix `X̂ [C·KH·KW, N·OH·OW]` of an input, as the B operand.
struct Im2col<'a, T> {
    g: ConvGeom,
    x: &'a [T],
}

/// Walks the taps `(ci, ki, kj)` from im2col row `q` on, in order.
struct Taps {
    tap: (usize, usize, usize),
    kh: usize,
    kw: usize,
}

impl Taps {
    fn from(g: &ConvGeom, q: usize) -> Taps {
        Taps { tap: tap(g, q), kh: g.kh, kw: g.kw }
    }
    #[inline(always)]
    fn advance(&mut self) {
        let (ci, ki, kj) = &mut self.tap;
        *kj += 1;
        if *kj == self.kw {
            *kj = 0;
            *ki += 1;
            if *ki == self.kh {
                *ki = 0;
                *ci += 1;
            }
        }
    }
}

/// Per run, the zero-padded input row segment its taps `(ci, ki, ·)` read: the taps of one
/// (channel, kernel row) differ only by a shift, so the segment is read once and every
/// kernel column is a (strided) copy out of it.
struct Segments<T> {
    data: Vec<T>,
    stride: usize,
    loaded: Option<(usize, usize)>,
}

impl<T: Float> Segments<T> {
    /// Room for `runs` runs of at most `len` columns.
    fn new(g: &ConvGeom, runs: usize, len: usize) -> Segments<T> {
        let stride = len.saturating_sub(1) * g.sw + g.kw;
        Segments { data: vec![T::zero(); runs * stride], stride, loaded: None }
    }

    /// Makes the segments hold `(ci, ki)` for `rs`.
    #[inline(always)]
    fn load(&mut self, g: &ConvGeom, x: &[T], rs: &[Run], ci: usize, ki: usize) {
        if self.loaded == Some((ci, ki)) {
            return;
        }
        for (k, r) in rs.iter().enumerate() {
            let s = &mut self.data[k * self.stride..][..(r.len - 1) * g.sw + g.kw];
            padded_row(g, x, r, ci, ki, (r.ox * g.sw) as isize - g.pw as isize, 1, s);
        }
        self.loaded = Some((ci, ki));
    }

    /// Writes tap `(ci, ki, kj)`'s values for the runs `rs` into `dst`, run `r` at `r.at`.
    #[inline(always)]
    fn write_tap(&mut self, g: &ConvGeom, x: &[T], rs: &[Run], (ci, ki, kj): (usize, usize, usize), dst: &mut [T]) {
        if g.kw == 1 && g.sw > 1 {
            for r in rs {
                strided_tap(g, x, r, ci, ki, kj, &mut dst[r.at..r.at + r.len]);
            }
            return;
        }
        self.load(g, x, rs, ci, ki);
        for (k, r) in rs.iter().enumerate() {
            let d = &mut dst[r.at..r.at + r.len];
            if g.sw == 1 {
                let at = k * self.stride + kj;
                d.copy_from_slice(&self.data[at..at + r.len]);
            } else {
                d.iter_mut().zip(self.tap(g, k, r, kj)).for_each(|(d, &v)| *d = v);
            }
        }
    }

    /// Run `k`'s values for kernel column `kj`.
    fn tap<'s>(&'s self, g: &ConvGeom, k: usize, r: &Run, kj: usize) -> impl Iterator<Item = &'s T> {
        self.data[k * self.stride + kj..].iter().step_by(g.sw).take(r.len)
    }
}

impl<T: Float> PackB<T> for Im2col<'_, T> {
    fn cols(&self) -> usize {
        self.g.n * self.g.ohw()
    }
    fn pack(&self, p0: usize, kc: usize, j0: usize, nc: usize, out: &mut [T]) {
        let g = &self.g;
        let narrow = if g.sw == 1 { GATHER_BELOW } else { GATHER_BELOW_STRIDED };
        if g.ow < narrow && self.x.len() <= i32::MAX as usize {
            return self.gather(p0, kc, j0, nc, out);
        }
        let mut rs = Vec::with_capacity(NR);
        let mut seg = Segments::new(g, NR, NR);
        b_panels(out, nc, kc, |jr, cols, panel| {
            runs(g, j0 + jr, cols, &mut rs);
            seg.loaded = None;
            let mut taps = Taps::from(g, p0);
            for p in 0..kc {
                seg.write_tap(g, self.x, &rs, taps.tap, &mut panel[p * NR..(p + 1) * NR]);
                taps.advance();
            }
        });
    }
}

/// Channels ahead of the gathers that the packer prefetches.
const AHEAD: usize = 2;

/// Output rows narrower than this are packed by gathers: a panel then spans several short
/// rows, and a copy per row piece costs more than a gather per 16 columns (measured A/B:
/// 7×7 outputs gain 3-8%, 14×14 lose 2-4% at stride 1 and gain 6% at stride 2, where each
/// row piece is a strided copy; 28×28 lose 15%).
const GATHER_BELOW: usize = 8;
const GATHER_BELOW_STRIDED: usize = 16;

impl<T: Float> Im2col<'_, T> {
    /// The panels by gathers: per panel, each column's input offset at tap (0, 0, 0) and per
    /// kernel position the columns that read inside the image; a tap is then one offset.
    fn gather(&self, p0: usize, kc: usize, j0: usize, nc: usize, out: &mut [T]) {
        let g = &self.g;
        let (hw, ohw) = (g.h * g.w, g.ohw());
        let mut base = [0i32; NR];
        let mut valid = vec![0u32; g.kh * g.kw];
        b_panels(out, nc, kc, |jr, cols, panel| {
            valid.fill(0);
            for (c, b) in base.iter_mut().enumerate().take(cols) {
                let (img, pos) = ((j0 + jr + c) / ohw, (j0 + jr + c) % ohw);
                let (iy, ix) =
                    ((pos / g.ow * g.sh) as isize - g.ph as isize, (pos % g.ow * g.sw) as isize - g.pw as isize);
                *b = (img * g.c * hw) as i32 + (iy * g.w as isize + ix) as i32;
                for ki in 0..g.kh {
                    for kj in 0..g.kw {
                        let (y, x) = (iy + ki as isize, ix + kj as isize);
                        if (0..g.h as isize).contains(&y) && (0..g.w as isize).contains(&x) {
                            valid[ki * g.kw + kj] |= 1 << c;
                        }
                    }
                }
            }
            let images = (j0 + jr) / ohw..=(j0 + jr + cols - 1) / ohw;
            let mut taps = Taps::from(g, p0);
            for p in 0..kc {
                let (ci, ki, kj) = taps.tap;
                if (ki, kj) == (0, 0) && ci + AHEAD < g.c {
                    // Gathers do not train the prefetcher: fetch a later channel's planes.
                    images.clone().for_each(|img| prefetch(&self.x[(img * g.c + ci + AHEAD) * hw..][..hw]));
                }
                let offset = (ci * hw + ki * g.w + kj) as i32;
                // SAFETY: a set bit's column reads (ci, iy + ki, ix + kj) inside its image.
                unsafe { gather_panel_row(self.x, &base, offset, valid[ki * g.kw + kj], &mut panel[p * NR..]) };
                taps.advance();
            }
        });
    }
}

/// Row `iy` of channel `ci` of image `img`.
fn x_row<'a, T>(x: &'a [T], g: &ConvGeom, img: usize, ci: usize, iy: usize) -> &'a [T] {
    &x[((img * g.c + ci) * g.h + iy) * g.w..][..g.w]
}

const IM2COL_T_COST: usize = 4;

/// `X̂ᵀ [N·OH·OW, C·KH·KW]` as the B operand (the backward-weight product).
struct Im2colT<'a, T> {
    g: ConvGeom,
    x: &'a [T],
}

impl<T: Float> PackB<T> for Im2colT<'_, T> {
    fn cols(&self) -> usize {
        self.g.ckk()
    }
    /// Copies of short pieces, then a transpose (measured: 1×1 s2 128→256 @28², where
    /// threads used to split the gradient's rows, spent a fifth of its time packing B twice).
    fn pack_cost(&self) -> usize {
        IM2COL_T_COST
    }
    fn pack(&self, p0: usize, kc: usize, j0: usize, nc: usize, out: &mut [T]) {
        let g = &self.g;
        if g.pointwise() {
            // X̂ᵀ is x itself, channels as columns: each image's piece of positions is
            // transposed straight out of its channel planes.
            let hw = g.h * g.w;
            return b_panels(out, nc, kc, |jr, cols, panel| {
                let mut at = 0;
                while at < kc {
                    let (img, pos) = ((p0 + at) / hw, (p0 + at) % hw);
                    let len = (hw - pos).min(kc - at);
                    let first = (img * g.c + j0 + jr) * hw + pos;
                    let src = &self.x[first..first + (cols - 1) * hw + len];
                    transpose_into_panel(src, hw, cols, len, &mut panel[at * NR..]);
                    at += len;
                }
            });
        }
        let mut rs = Vec::new();
        runs(g, p0, kc, &mut rs);
        let mut seg = Segments::new(g, rs.len(), g.ow);
        // Each tap's positions copied contiguously (row runs out of the segments), then the
        // block transposed into the panel: a column written straight into the panel would
        // store one element per 128-byte row.
        let mut columns = vec![T::zero(); NR * kc];
        b_panels(out, nc, kc, |jr, cols, panel| {
            seg.loaded = None;
            let mut taps = Taps::from(g, j0 + jr);
            for c in 0..cols {
                seg.write_tap(g, self.x, &rs, taps.tap, &mut columns[c * kc..(c + 1) * kc]);
                taps.advance();
            }
            transpose_into_panel(&columns, kc, cols, kc, panel);
        });
    }
}

/// Run `r`'s values of tap `(ci, ki, kj)` read straight from the input, every `sw`-th: a
/// strided 1×1 kernel has no neighbouring taps to share a segment with, and copying the
/// segment first would move twice the data.
fn strided_tap<T: Float>(g: &ConvGeom, x: &[T], r: &Run, ci: usize, ki: usize, kj: usize, s: &mut [T]) {
    padded_row(g, x, r, ci, ki, (r.ox * g.sw + kj) as isize - g.pw as isize, g.sw, s);
}

/// `s[t] = x[img, ci, oy·sh + ki − ph, start + t·step]` for run `r`'s image and output row,
/// zero where that falls outside the image.
#[allow(clippy::too_many_arguments)]
fn padded_row<T: Float>(g: &ConvGeom, x: &[T], r: &Run, ci: usize, ki: usize, start: isize, step: usize, s: &mut [T]) {
    let Some(iy) = g.input_row(r.oy, ki) else {
        s.fill(T::zero());
        return;
    };
    let row = x_row(x, g, r.img, ci, iy);
    let (n, step_i) = (s.len(), step as isize);
    // The positions t whose column start + t·step lies in [0, w).
    let lo = (if start < 0 { (-start + step_i - 1) / step_i } else { 0 } as usize).min(n);
    let hi =
        (if (g.w as isize) > start { (g.w as isize - start + step_i - 1) / step_i } else { 0 } as usize).clamp(lo, n);
    // Padding is a value or two at an edge: stores, not memset calls.
    (0..lo).chain(hi..n).for_each(|t| s[t] = T::zero());
    if hi > lo {
        let first = (start + (lo * step) as isize) as usize;
        copy_strided(&mut s[lo..hi], &row[first..=first + (hi - lo - 1) * step], step);
    }
}

/// An NCHW tensor `[N, rows, OH·OW]` read as the matrix `[rows, N·OH·OW]`.
struct Images<'a, T> {
    data: &'a [T],
    rows: usize,
    ohw: usize,
    n: usize,
}

impl<T> Images<'_, T> {
    /// Calls `f(image, first position, length, offset)` for the image-contiguous pieces of
    /// global positions `[j, j + len)`.
    fn pieces(&self, j: usize, len: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
        let mut at = 0;
        while at < len {
            let (img, pos) = ((j + at) / self.ohw, (j + at) % self.ohw);
            let n = (self.ohw - pos).min(len - at);
            f(img, pos, n, at);
            at += n;
        }
    }
    fn row(&self, img: usize, r: usize) -> usize {
        (img * self.rows + r) * self.ohw
    }
}

/// As A (`rows × positions`): the gradient in the backward-weight product.
impl<T: Float> PackA<T> for Images<'_, T> {
    fn rows(&self) -> usize {
        self.rows
    }
    fn depth(&self) -> usize {
        self.n * self.ohw
    }
    fn pack(&self, i0: usize, mc: usize, p0: usize, kc: usize, out: &mut [T]) {
        a_panels(out, mc, kc, |ir, rows, panel| {
            self.pieces(p0, kc, |img, pos, len, at| {
                if rows == MR {
                    let first = self.row(img, i0 + ir) + pos;
                    let src = &self.data[first..first + (MR - 1) * self.ohw + len];
                    return transpose_into_a_panel(src, self.ohw, len, &mut panel[at * MR..]);
                }
                for r in 0..rows {
                    let src = &self.data[self.row(img, i0 + ir + r) + pos..][..len];
                    src.iter().enumerate().for_each(|(t, &v)| panel[(at + t) * MR + r] = v);
                }
            });
        });
    }
}

/// As B (`rows × positions`): the gradient in the strided backward-input product.
impl<T: Float> PackB<T> for Images<'_, T> {
    fn cols(&self) -> usize {
        self.n * self.ohw
    }
    fn pack(&self, p0: usize, kc: usize, j0: usize, nc: usize, out: &mut [T]) {
        b_panels(out, nc, kc, |jr, cols, panel| {
            for p in 0..kc {
                let dst = &mut panel[p * NR..(p + 1) * NR];
                self.pieces(j0 + jr, cols, |img, pos, len, at| {
                    dst[at..at + len].copy_from_slice(&self.data[self.row(img, p0 + p) + pos..][..len]);
                });
            }
        });
    }
}

/// An NCHW output `[N, rows, ohw]` written as the matrix `[rows, N·ohw]`.
struct ImagesOut<T> {
    ptr: *mut T,
    rows: usize,
    ohw: usize,
}

// SAFETY: threads write disjoint tiles (see `StoreC`).
unsafe impl<T: Send> Sync for ImagesOut<T> {}

impl<T> ImagesOut<T> {
    fn new(data: &mut [T], n: usize, rows: usize, ohw: usize) -> Self {
        assert!(data.len() >= n * rows * ohw, "conv output buffer too small");
        ImagesOut { ptr: data.as_mut_ptr(), rows, ohw }
    }
    fn at(&self, r: usize, j: usize) -> usize {
        (j / self.ohw * self.rows + r) * self.ohw + j % self.ohw
    }
}

// SAFETY: every address is `at(r, j)` for r < rows and j < N·ohw, inside the buffer.
unsafe impl<T: Float> StoreC<T> for ImagesOut<T> {
    fn dense(&self, i: usize, j: usize, nr: usize) -> Option<Tile<T>> {
        // The tile's columns lie in this image's row block, or run on into the next one's.
        let split = self.ohw - j % self.ohw;
        // SAFETY: both pieces' rows lie in their image's row block (checked).
        let at = |j| unsafe { self.ptr.add(self.at(i, j)) };
        match split {
            s if s >= nr => Some(Tile::dense(at(j), self.ohw)),
            s if nr - s <= self.ohw => Some(Tile { first: at(j), ld: self.ohw, split: s, second: at(j + s) }),
            _ => None,
        }
    }
    fn store(&self, i: usize, j: usize, mr: usize, nr: usize, tile: &[T], add: bool) {
        // Column pieces that stay inside one image are contiguous in every row.
        let mut c = 0;
        while c < nr {
            let len = (self.ohw - (j + c) % self.ohw).min(nr - c);
            for r in 0..mr {
                // SAFETY: (i + r, j + c .. j + c + len) are elements of this thread's tile, in
                // one image row block.
                let d = unsafe { std::slice::from_raw_parts_mut(self.ptr.add(self.at(i + r, j + c)), len) };
                let t = &tile[r * NR + c..r * NR + c + len];
                if add {
                    d.iter_mut().zip(t).for_each(|(d, &v)| *d += v);
                } else {
                    d.copy_from_slice(t);
                }
            }
            c += len;
        }
    }
}

/// `y [N,O,OH,OW] = conv(x [N,C,H,W], w [O,C,KH,KW]) + bias [O]`.
pub fn conv2d_forward<T: Float>(g: &ConvGeom, x: &[T], w: &[T], bias: Option<&[T]>, y: &mut [T]) {
    if let Some((g1, xs)) = subsampled(g, x) {
        return conv2d_forward(&g1, &xs, w, bias, y);
    }
    if direct::try_forward(g, x, w, bias, y) {
        return;
    }
    let ohw = g.ohw();
    if let Some(b) = bias {
        y.par_chunks_mut(ohw).enumerate().for_each(|(i, plane)| plane.fill(b[i % g.o]));
    }
    forward_packed(g, x, &DenseA(Mat::new(w, g.o, g.ckk())), bias.is_some(), y);
}

/// The forward product with the kernel as any A packer (`O × C·KH·KW`).
fn forward_packed<T: Float>(g: &ConvGeom, x: &[T], w: &impl PackA<T>, accumulate: bool, y: &mut [T]) {
    let out = ImagesOut::new(y, g.n, g.o, g.ohw());
    if g.pointwise() {
        // X̂ is x itself: whole image pieces, not output rows.
        return gemm(w, &Images { data: x, rows: g.c, ohw: g.ohw(), n: g.n }, &out, accumulate, true);
    }
    gemm(w, &Im2col { g: *g, x }, &out, accumulate, true);
}

/// A strided, unpadded 1×1 conv as the same conv at stride 1 of the input's every sh-th
/// row and sw-th column, subsampled once: packing then copies whole contiguous pieces
/// instead of compacting every row piece of every panel (the shortcut convs' packing was a
/// fifth of their time).
fn subsampled<T: Float>(g: &ConvGeom, x: &[T]) -> Option<(ConvGeom, Vec<T>)> {
    if !(g.kh == 1 && g.kw == 1 && g.ph == 0 && g.pw == 0 && (g.sh > 1 || g.sw > 1)) {
        return None;
    }
    let (hw, ohw) = (g.h * g.w, g.ohw());
    let mut xs = vec![T::zero(); g.n * g.c * ohw];
    xs.par_chunks_mut(ohw).enumerate().for_each(|(plane, out)| {
        for (oy, row) in out.chunks_exact_mut(g.ow).enumerate() {
            let src = &x[plane * hw + oy * g.sh * g.w..][..(g.ow - 1) * g.sw + 1];
            copy_strided(row, src, g.sw);
        }
    });
    Some((ConvGeom { h: g.oh, w: g.ow, sh: 1, sw: 1, ..*g }, xs))
}

/// The stride-1 backward-input kernel (where the direct path does not run: f64, CPUs
/// without AVX-512) read straight from `w [O,C,KH,KW]`: row `c`, depth
/// `(o, t)` is `w[o, c, KH·KW − 1 − t]` (flipped in space, transposed in channels). The
/// eight rows of a panel at one `o` are 8·KH·KW contiguous weights, so packing reads
/// sequentially instead of transposing the whole kernel first.
struct FlippedT<'a, T> {
    w: &'a [T],
    o: usize,
    c: usize,
    kk: usize,
}

impl<T: Float> PackA<T> for FlippedT<'_, T> {
    fn rows(&self) -> usize {
        self.c
    }
    fn depth(&self) -> usize {
        self.o * self.kk
    }
    fn pack(&self, i0: usize, mc: usize, p0: usize, kc: usize, out: &mut [T]) {
        let kk = self.kk;
        // The depth at one `o` outer, panels inner, so w[o]'s rows i0.. are read in order
        // (panel by panel, each read would jump O·C·KK apart and wait on memory).
        let mut p = 0;
        while p < kc {
            let (o, t) = ((p0 + p) / kk, (p0 + p) % kk);
            let len = (kk - t).min(kc - p);
            for ir in (0..mc).step_by(MR) {
                let base = (o * self.c + i0 + ir) * kk;
                let dst = &mut out[ir * kc + p * MR..ir * kc + (p + len) * MR];
                let rows = MR.min(mc - ir);
                for (q, d) in dst.chunks_exact_mut(MR).enumerate() {
                    for (r, v) in d.iter_mut().enumerate() {
                        *v = if r < rows { self.w[base + r * kk + kk - 1 - t - q] } else { T::zero() };
                    }
                }
            }
            p += len;
        }
    }
}

/// `gx [N,C,H,W]` from `gy [N,O,OH,OW]` and `w [O,C,KH,KW]` (overwrites `gx`).
pub fn conv2d_backward_input<T: Float>(g: &ConvGeom, gy: &[T], w: &[T], gx: &mut [T]) {
    if g.sh == 1 && g.sw == 1 && g.ph < g.kh && g.pw < g.kw {
        // A stride-1 conv's input gradient is the conv of gy with the kernel flipped in space
        // and transposed in channels, padded by k − 1 − p.
        let (kh, kw) = (g.kh, g.kw);
        let gt = ConvGeom::new(&[g.n, g.o, g.oh, g.ow], &[g.c, g.o, kh, kw], [1, 1], [kh - 1 - g.ph, kw - 1 - g.pw])
            .expect("the transposed geometry of a valid stride-1 conv is valid");
        debug_assert_eq!((gt.oh, gt.ow), (g.h, g.w));
        if direct::try_backward_input(g, &gt, gy, w, gx) {
            return;
        }
        forward_packed(&gt, gy, &FlippedT { w, o: g.o, c: g.c, kk: kh * kw }, false, gx);
        return;
    }
    if direct::try_backward_input_strided(g, gy, w, gx) {
        return;
    }
    // Strided: col = Wᵀ·gy for a chunk of images (≤ ~16 MiB of columns), folded into gx.
    let (ckk, ohw, chw) = (g.ckk(), g.ohw(), g.chw());
    let chunk = ((4 << 20) / (ckk * ohw).max(1)).clamp(1, g.n.max(1));
    let mut col = vec![T::zero(); ckk * chunk * ohw];
    for first in (0..g.n).step_by(chunk) {
        let len = chunk.min(g.n - first);
        let gy_chunk = Images { data: &gy[first * g.o * ohw..(first + len) * g.o * ohw], rows: g.o, ohw, n: len };
        let c = DenseC::new(&mut col, ckk, len * ohw);
        gemm(&DenseA(Mat::t(w, g.o, ckk)), &gy_chunk, &c, false, true);
        fold(g, &col, len, &mut gx[first * chw..(first + len) * chw]);
    }
}

/// Folds `col [C·KH·KW, len·OH·OW]` back into the images `gx [len,C,H,W]` (overwritten),
/// summing overlapping taps. Parallel over (image, channel) planes.
fn fold<T: Float>(g: &ConvGeom, col: &[T], len: usize, gx: &mut [T]) {
    let (ohw, ld, hw) = (g.ohw(), len * g.ohw(), g.h * g.w);
    gx[..len * g.c * hw].par_chunks_mut(super::piece(hw)).enumerate().for_each(|(p, plane)| {
        let (j, ci) = (p / g.c, p % g.c);
        plane.fill(T::zero());
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let at = ((ci * g.kh + ki) * g.kw + kj) * ld + j * ohw;
                let src = &col[at..at + ohw];
                let (lo, hi) = g.valid_cols(kj);
                for oy in 0..g.oh {
                    let Some(iy) = g.input_row(oy, ki) else { continue };
                    let s = &src[oy * g.ow..(oy + 1) * g.ow];
                    let d = &mut plane[iy * g.w..(iy + 1) * g.w];
                    let ix0 = lo * g.sw + kj - g.pw;
                    for k in 0..hi - lo {
                        d[ix0 + k * g.sw] += s[lo + k];
                    }
                }
            }
        }
    });
}

/// Image chunks of a backward-weight product summed separately, when the gradient has few
/// columns (1×1 kernels: C·KH·KW ≤ 256) and the sum over positions is long: split by
/// threads instead, each thread would pack every panel of the long operand itself. Measured
/// (A/B, one process): 1×1 s2 64→128 @56² 70.6 → 85.1 GFLOP/s, 64→64 @112² 58.2 → 63.9;
/// 3×3 kernels lose (128@28² 168 → 150), and so do chunks of few positions (1×1 s2
/// 256→512 @14²: 120 → 57), so those keep the threaded product.
const WEIGHT_CHUNKS: usize = 8;
const NARROW_WEIGHT: usize = 256;
const LONG_CHUNK: usize = 1024;

/// `gw [O,C,KH,KW] = Σ gy · X̂ᵀ` over the whole batch (overwrites `gw`).
pub fn conv2d_backward_weight<T: Float>(g: &ConvGeom, gy: &[T], x: &[T], gw: &mut [T]) {
    if let Some((g1, xs)) = subsampled(g, x) {
        return conv2d_backward_weight(&g1, gy, &xs, gw);
    }
    if direct::try_backward_weight(g, gy, x, gw) {
        return;
    }
    let (ohw, chw, size) = (g.ohw(), g.chw(), g.o * g.ckk());
    let product = |first: usize, len: usize, out: &mut [T], threaded: bool| {
        let a = Images { data: &gy[first * g.o * ohw..(first + len) * g.o * ohw], rows: g.o, ohw, n: len };
        let b = Im2colT { g: ConvGeom { n: len, ..*g }, x: &x[first * chw..(first + len) * chw] };
        gemm(&a, &b, &DenseC::new(out, g.o, g.ckk()), false, threaded);
    };
    if g.ckk() > NARROW_WEIGHT || g.n < 2 || g.n.div_ceil(WEIGHT_CHUNKS) * ohw < LONG_CHUNK {
        return product(0, g.n, gw, true);
    }
    // Each chunk of images summed on one thread, the partial gradients added in chunk order:
    // the chunks depend on the shape only, so the result does not depend on the thread count.
    let per = g.n.div_ceil(WEIGHT_CHUNKS);
    let firsts: Vec<usize> = (0..g.n).step_by(per).collect();
    let partials: Vec<Vec<T>> = firsts
        .par_iter()
        .map(|&first| {
            let mut part = vec![T::zero(); size];
            product(first, per.min(g.n - first), &mut part, false);
            part
        })
        .collect();
    gw.copy_from_slice(&partials[0]);
    for p in &partials[1..] {
        gw.iter_mut().zip(p).for_each(|(d, &v)| *d += v);
    }
}
