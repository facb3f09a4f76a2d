//! conv2d forward, backward-input and backward-weight, NCHW, any kernel/stride/padding.
//! im2col + GEMM. Consecutive images are unfolded side by side into one column matrix so
//! every GEMM is wide enough to run near peak even at 7×7; groups run in parallel when there
//! are enough of them, otherwise the GEMM itself is threaded. A 1×1 stride-1 unpadded conv
//! of a single image reads its input as the column matrix directly.

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

/// Columns per GEMM worth aiming for: below ~1k the GEMM's packing overhead shows.
const TARGET_COLS: usize = 1024;

/// The batch cut into runs of consecutive images, one GEMM each, and whether the runs go to
/// separate threads (else each GEMM is threaded).
struct Plan {
    groups: Vec<std::ops::Range<usize>>,
    parallel: bool,
}

fn plan(g: &ConvGeom) -> Plan {
    let threads = rayon::current_num_threads();
    let per_group = TARGET_COLS.div_ceil(g.ohw().max(1));
    let mut count = (g.n / per_group).max(1);
    if count >= threads {
        count -= count % threads; // whole rounds of threads: no straggler group
    }
    let groups = (0..count).map(|k| k * g.n / count..(k + 1) * g.n / count).collect();
    Plan { groups, parallel: threads > 1 && count >= threads }
}

/// Unfolds images `imgs` of `x [N,C,H,W]` side by side into `col [C·KH·KW, len·OH·OW]`.
/// Parallel over input channels, whose rows are disjoint.
fn unfold<T: Float>(g: &ConvGeom, x: &[T], imgs: std::ops::Range<usize>, col: &mut [T]) {
    let (ohw, kk, ld) = (g.ohw(), g.kh * g.kw, imgs.len() * g.ohw());
    col[..g.ckk() * ld].par_chunks_mut(kk * ld).enumerate().for_each(|(ci, rows)| {
        for (j, img) in imgs.clone().enumerate() {
            let plane = &x[(img * g.c + ci) * g.h * g.w..(img * g.c + ci + 1) * g.h * g.w];
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let at = (ki * g.kw + kj) * ld + j * ohw;
                    unfold_row(g, plane, ki, kj, &mut rows[at..at + ohw]);
                }
            }
        }
    });
}

/// One (channel, ki, kj) row of one image: input pixels at output positions, 0 in padding.
fn unfold_row<T: Float>(g: &ConvGeom, plane: &[T], ki: usize, kj: usize, dst: &mut [T]) {
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

/// Folds `col [C·KH·KW, len·OH·OW]` back into the images `gx [len,C,H,W]` (overwritten),
/// summing overlapping taps. Parallel over (image, channel) planes.
fn fold<T: Float>(g: &ConvGeom, col: &[T], len: usize, gx: &mut [T]) {
    let (ohw, ld, hw) = (g.ohw(), len * g.ohw(), g.h * g.w);
    gx[..len * g.c * hw].par_chunks_mut(hw).enumerate().for_each(|(p, plane)| {
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

/// `[len, rows, cols]` (images of `src`) → `[rows, len·cols]`.
fn gather<T: Float>(src: &[T], len: usize, rows: usize, cols: usize, dst: &mut [T]) {
    for j in 0..len {
        for r in 0..rows {
            let at = r * len * cols + j * cols;
            dst[at..at + cols].copy_from_slice(&src[(j * rows + r) * cols..(j * rows + r + 1) * cols]);
        }
    }
}

/// `[rows, len·cols]` → `[len, rows, cols]`.
fn scatter<T: Float>(src: &[T], len: usize, rows: usize, cols: usize, dst: &mut [T]) {
    for j in 0..len {
        for r in 0..rows {
            let at = r * len * cols + j * cols;
            dst[(j * rows + r) * cols..(j * rows + r + 1) * cols].copy_from_slice(&src[at..at + cols]);
        }
    }
}

/// Scratch of one group: the column matrix and an `[O, len·OH·OW]` staging matrix.
#[derive(Default)]
struct Scratch<T> {
    col: Vec<T>,
    out: Vec<T>,
}

impl<T: Float> Scratch<T> {
    fn sized(&mut self, g: &ConvGeom, len: usize) -> (&mut [T], &mut [T]) {
        let (c, o) = (g.ckk() * len * g.ohw(), g.o * len * g.ohw());
        if self.col.len() < c {
            self.col.resize(c, T::zero());
        }
        if self.out.len() < o {
            self.out.resize(o, T::zero());
        }
        (&mut self.col[..c], &mut self.out[..o])
    }
}

/// The group's column matrix: the image itself for a single pointwise image, else unfolded.
fn columns<'a, T: Float>(g: &ConvGeom, x: &'a [T], imgs: std::ops::Range<usize>, col: &'a mut [T]) -> &'a [T] {
    if g.pointwise() && imgs.len() == 1 {
        &x[imgs.start * g.chw()..imgs.end * g.chw()]
    } else {
        unfold(g, x, imgs, col);
        col
    }
}

/// Runs `f(group, its output slice, scratch, threaded_gemm)` for every group of `plan`,
/// where each group owns `per_image` consecutive elements of `out` per image.
fn for_groups<T: Float>(
    g: &ConvGeom,
    out: &mut [T],
    per_image: usize,
    f: impl Fn(std::ops::Range<usize>, &mut [T], &mut Scratch<T>, bool) + Sync,
) {
    let p = plan(g);
    let mut slices = Vec::with_capacity(p.groups.len());
    let mut rest = out;
    for r in &p.groups {
        let (head, tail) = rest.split_at_mut(r.len() * per_image);
        slices.push((r.clone(), head));
        rest = tail;
    }
    if p.parallel {
        slices.into_par_iter().for_each_init(Scratch::default, |s, (r, o)| f(r, o, s, false));
    } else {
        let mut s = Scratch::default();
        slices.into_iter().for_each(|(r, o)| f(r, o, &mut s, true));
    }
}

/// `y [N,O,OH,OW] = conv(x [N,C,H,W], w [O,C,KH,KW]) + bias [O]`.
pub fn conv2d_forward<T: Float>(g: &ConvGeom, x: &[T], w: &[T], bias: Option<&[T]>, y: &mut [T]) {
    let (ckk, ohw) = (g.ckk(), g.ohw());
    for_groups(g, y, g.o * ohw, |imgs, y_grp, s, threaded| {
        let len = imgs.len();
        let (col, out) = s.sized(g, len);
        let b = columns(g, x, imgs, col);
        let fill_bias = |dst: &mut [T]| {
            if let Some(bias) = bias {
                for (row, &v) in dst.chunks_mut(len * ohw).zip(bias) {
                    row.fill(v);
                }
            }
        };
        let wm = Mat::new(w, g.o, ckk);
        if len == 1 {
            fill_bias(y_grp);
            matmul(wm, Mat::new(b, ckk, ohw), y_grp, bias.is_some(), threaded);
        } else {
            fill_bias(out);
            matmul(wm, Mat::new(b, ckk, len * ohw), out, bias.is_some(), threaded);
            scatter(out, len, g.o, ohw, y_grp);
        }
    });
}

/// `gx [N,C,H,W]` from `gy [N,O,OH,OW]` and `w [O,C,KH,KW]` (overwrites `gx`).
pub fn conv2d_backward_input<T: Float>(g: &ConvGeom, gy: &[T], w: &[T], gx: &mut [T]) {
    let (ckk, ohw) = (g.ckk(), g.ohw());
    for_groups(g, gx, g.chw(), |imgs, gx_grp, s, threaded| {
        let len = imgs.len();
        let (col, out) = s.sized(g, len);
        let gy_imgs = &gy[imgs.start * g.o * ohw..imgs.end * g.o * ohw];
        let gyg: &[T] = if len == 1 {
            gy_imgs
        } else {
            gather(gy_imgs, len, g.o, ohw, out);
            out
        };
        let wt = Mat::t(w, g.o, ckk);
        if g.pointwise() && len == 1 {
            matmul(wt, Mat::new(gyg, g.o, ohw), gx_grp, false, threaded);
        } else {
            matmul(wt, Mat::new(gyg, g.o, len * ohw), col, false, threaded);
            fold(g, col, len, gx_grp);
        }
    });
}

/// `gw [O,C,KH,KW] = Σ_n gy_n · col(x_n)ᵀ` (overwrites `gw`). Groups sum into partials that
/// are added in group order: deterministic for a given thread count.
pub fn conv2d_backward_weight<T: Float>(g: &ConvGeom, gy: &[T], x: &[T], gw: &mut [T]) {
    let (ckk, ohw) = (g.ckk(), g.ohw());
    let p = plan(g);
    let group = |imgs: std::ops::Range<usize>, acc: &mut [T], s: &mut Scratch<T>, threaded: bool| {
        let len = imgs.len();
        let (col, out) = s.sized(g, len);
        let gy_imgs = &gy[imgs.start * g.o * ohw..imgs.end * g.o * ohw];
        let gyg: &[T] = if len == 1 {
            gy_imgs
        } else {
            gather(gy_imgs, len, g.o, ohw, out);
            out
        };
        let b = columns(g, x, imgs, col);
        matmul(Mat::new(gyg, g.o, len * ohw), Mat::t(b, ckk, len * ohw), acc, true, threaded);
    };
    gw.fill(T::zero());
    if !p.parallel {
        let mut s = Scratch::default();
        p.groups.into_iter().for_each(|r| group(r, gw, &mut s, true));
        return;
    }
    let threads = rayon::current_num_threads();
    let per = p.groups.len() / threads;
    let partial: Vec<Vec<T>> = (0..threads)
        .into_par_iter()
        .map(|k| {
            let (mut acc, mut s) = (vec![T::zero(); gw.len()], Scratch::default());
            p.groups[k * per..(k + 1) * per].iter().for_each(|r| group(r.clone(), &mut acc, &mut s, false));
            acc
        })
        .collect();
    for part in &partial {
        gw.iter_mut().zip(part).for_each(|(a, &b)| *a += b);
    }
}
