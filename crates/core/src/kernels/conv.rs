//! conv2d forward, backward-input and backward-weight, NCHW, any kernel/stride/padding.
//! im2col + GEMM; a 1×1 stride-1 unpadded conv skips im2col. Images run in parallel when the
//! batch covers the pool, otherwise the GEMM itself is threaded.

use super::gemm::{matmul, Mat};
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
    /// A 1×1, stride 1, unpadded conv reads its input as the column matrix directly.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1 && self.ph == 0 && self.pw == 0
    }
    fn col_len(&self) -> usize {
        if self.pointwise() {
            0
        } else {
            self.ckk() * self.ohw()
        }
    }
    /// Output columns `ox` whose input column `ox·sw + kj − pw` lies inside the image.
    fn valid_cols(&self, kj: usize) -> (usize, usize) {
        let lo = self.pw.saturating_sub(kj).div_ceil(self.sw);
        let hi = (self.w + self.pw).saturating_sub(kj).div_ceil(self.sw).min(self.ow);
        (lo.min(hi), hi)
    }
    fn input_row(&self, oy: usize, ki: usize) -> Option<usize> {
        (oy * self.sh + ki).checked_sub(self.ph).filter(|&iy| iy < self.h)
    }
}

fn batch_parallel(n: usize) -> bool {
    let t = rayon::current_num_threads();
    t > 1 && n >= t
}

/// Unfolds one image `[C,H,W]` into `col [C·KH·KW, OH·OW]`.
fn im2col<T: Float>(g: &ConvGeom, x: &[T], col: &mut [T]) {
    let ohw = g.ohw();
    for ci in 0..g.c {
        let plane = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = (ci * g.kh + ki) * g.kw + kj;
                let dst = &mut col[row * ohw..(row + 1) * ohw];
                let (lo, hi) = g.valid_cols(kj);
                for oy in 0..g.oh {
                    let d = &mut dst[oy * g.ow..(oy + 1) * g.ow];
                    let Some(iy) = g.input_row(oy, ki) else {
                        d.fill(T::zero());
                        continue;
                    };
                    let src = &plane[iy * g.w..(iy + 1) * g.w];
                    d[..lo].fill(T::zero());
                    d[hi..].fill(T::zero());
                    let ix0 = lo * g.sw + kj - g.pw;
                    if g.sw == 1 {
                        d[lo..hi].copy_from_slice(&src[ix0..ix0 + hi - lo]);
                    } else {
                        for (k, v) in d[lo..hi].iter_mut().enumerate() {
                            *v = src[ix0 + k * g.sw];
                        }
                    }
                }
            }
        }
    }
}

/// Folds `col [C·KH·KW, OH·OW]` back into one image `[C,H,W]`, adding to what is there.
fn col2im<T: Float>(g: &ConvGeom, col: &[T], x: &mut [T]) {
    let ohw = g.ohw();
    for ci in 0..g.c {
        let plane = &mut x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = (ci * g.kh + ki) * g.kw + kj;
                let src = &col[row * ohw..(row + 1) * ohw];
                let (lo, hi) = g.valid_cols(kj);
                for oy in 0..g.oh {
                    let Some(iy) = g.input_row(oy, ki) else {
                        continue;
                    };
                    let s = &src[oy * g.ow..(oy + 1) * g.ow];
                    let d = &mut plane[iy * g.w..(iy + 1) * g.w];
                    let ix0 = lo * g.sw + kj - g.pw;
                    for k in 0..hi - lo {
                        d[ix0 + k * g.sw] += s[lo + k];
                    }
                }
            }
        }
    }
}

/// The image's column matrix: the image itself for a pointwise conv, else unfolded into `col`.
fn columns<'a, T: Float>(g: &ConvGeom, x_img: &'a [T], col: &'a mut [T]) -> &'a [T] {
    if g.pointwise() {
        x_img
    } else {
        im2col(g, x_img, col);
        col
    }
}

/// `y [N,O,OH,OW] = conv(x [N,C,H,W], w [O,C,KH,KW]) + bias [O]`.
pub fn conv2d_forward<T: Float>(g: &ConvGeom, x: &[T], w: &[T], bias: Option<&[T]>, y: &mut [T]) {
    let (ckk, ohw, chw) = (g.ckk(), g.ohw(), g.chw());
    let one = |i: usize, y_img: &mut [T], col: &mut [T], threaded: bool| {
        let src = columns(g, &x[i * chw..(i + 1) * chw], col);
        if let Some(b) = bias {
            for (o, row) in y_img.chunks_mut(ohw).enumerate() {
                row.fill(b[o]);
            }
        }
        matmul(Mat::new(w, g.o, ckk), Mat::new(src, ckk, ohw), y_img, bias.is_some(), threaded);
    };
    let per_image = g.o * ohw;
    if batch_parallel(g.n) {
        y.par_chunks_mut(per_image)
            .enumerate()
            .for_each_init(|| vec![T::zero(); g.col_len()], |col, (i, y_img)| one(i, y_img, col, false));
    } else {
        let mut col = vec![T::zero(); g.col_len()];
        for (i, y_img) in y.chunks_mut(per_image).enumerate() {
            one(i, y_img, &mut col, true);
        }
    }
}

/// `gx [N,C,H,W]` from `gy [N,O,OH,OW]` and `w [O,C,KH,KW]` (overwrites `gx`).
pub fn conv2d_backward_input<T: Float>(g: &ConvGeom, gy: &[T], w: &[T], gx: &mut [T]) {
    let (ckk, ohw, chw) = (g.ckk(), g.ohw(), g.chw());
    let one = |i: usize, gx_img: &mut [T], col: &mut [T], threaded: bool| {
        let gy_img = &gy[i * g.o * ohw..(i + 1) * g.o * ohw];
        let wt = Mat::t(w, g.o, ckk);
        if g.pointwise() {
            matmul(wt, Mat::new(gy_img, g.o, ohw), gx_img, false, threaded);
        } else {
            matmul(wt, Mat::new(gy_img, g.o, ohw), col, false, threaded);
            gx_img.fill(T::zero());
            col2im(g, col, gx_img);
        }
    };
    if batch_parallel(g.n) {
        gx.par_chunks_mut(chw)
            .enumerate()
            .for_each_init(|| vec![T::zero(); g.col_len()], |col, (i, gx_img)| one(i, gx_img, col, false));
    } else {
        let mut col = vec![T::zero(); g.col_len()];
        for (i, gx_img) in gx.chunks_mut(chw).enumerate() {
            one(i, gx_img, &mut col, true);
        }
    }
}

/// `gw [O,C,KH,KW] = Σ_n gy_n · col(x_n)ᵀ` (overwrites `gw`). The batch is cut into one
/// chunk per thread and the chunk sums are added in order: deterministic for a thread count.
pub fn conv2d_backward_weight<T: Float>(g: &ConvGeom, gy: &[T], x: &[T], gw: &mut [T]) {
    let (ckk, ohw, chw) = (g.ckk(), g.ohw(), g.chw());
    let accumulate = |range: std::ops::Range<usize>, acc: &mut [T], threaded: bool| {
        let mut col = vec![T::zero(); g.col_len()];
        for i in range {
            let src = columns(g, &x[i * chw..(i + 1) * chw], &mut col);
            let gy_img = &gy[i * g.o * ohw..(i + 1) * g.o * ohw];
            matmul(Mat::new(gy_img, g.o, ohw), Mat::t(src, ckk, ohw), acc, true, threaded);
        }
    };
    gw.fill(T::zero());
    if !batch_parallel(g.n) {
        accumulate(0..g.n, gw, true);
        return;
    }
    let chunks = rayon::current_num_threads();
    let partial: Vec<Vec<T>> = (0..chunks)
        .into_par_iter()
        .map(|k| {
            let mut acc = vec![T::zero(); gw.len()];
            accumulate(k * g.n / chunks..(k + 1) * g.n / chunks, &mut acc, false);
            acc
        })
        .collect();
    for p in &partial {
        gw.iter_mut().zip(p).for_each(|(a, &b)| *a += b);
    }
}
