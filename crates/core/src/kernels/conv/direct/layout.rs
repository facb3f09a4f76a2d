//! What the direct kernels read and write: weights laid out in blocks of OCB output
//! channels, 64-byte-aligned pooled buffers, zero-padded bands of input rows, and the
//! output pointer threads share.

use super::super::ConvGeom;
use crate::kernels::gemm::{prefetch, transpose_into_panel, NR};
use crate::pool;
use rayon::prelude::*;
use std::arch::x86_64::*;

/// Output channels per kernel call: two vectors of f32, the GEMM panel's width (the
/// weights are transposed into its layout).
pub(super) const OCB: usize = NR;
/// Output channels ahead that the gathering layout prefetches.
const AHEAD: usize = 4;

/// Weights as the kernel reads them: per block of OCB output channels, for each input
/// channel and tap in order, the block's OCB values (zero past the last channel); each
/// block 64-byte aligned, so a vector load never splits a cache line.
pub(super) struct Weights {
    data: Aligned,
    block: usize,
}

impl Weights {
    /// From `w [O, C, KK]`: block `b`, row `(c, t)`, lane `l` is `w[b·OCB + l, c, t]`,
    /// by 16 × 16 transposes in registers.
    pub(super) fn forward(w: &[f32], o: usize, c: usize, kk: usize) -> Weights {
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
    pub(super) fn flipped(w: &[f32], o: usize, c: usize, kk: usize) -> Weights {
        Weights::transposed(w, o, c, kk, true)
    }

    /// From `w [O, C, KK]` with output and input channels swapped: block `b`, row
    /// `(o, t)`, lane `l` is `w[o, b·OCB + l, t]`, or tap `KK − 1 − t` when `flip`; by
    /// gathers (a row's lanes lie KK apart).
    pub(super) fn transposed(w: &[f32], o: usize, c: usize, kk: usize, flip: bool) -> Weights {
        Weights::new(c, o * kk, |b, live, out| {
            for (row, dst) in out.chunks_exact_mut(OCB).enumerate() {
                let (oi, t) = (row / kk, if flip { kk - 1 - row % kk } else { row % kk });
                if row % kk == 0 && oi + AHEAD < o {
                    // Each `o` reads its block's KK·OCB weights C·KK further on: a stride
                    // the gathers leave the prefetcher to guess (they were 13% of 512@7²).
                    prefetch(&w[((oi + AHEAD) * c + b * OCB) * kk..][..live * kk]);
                }
                let at = (oi * c + b * OCB) * kk + t;
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
        data.get_mut().par_chunks_mut(block).enumerate().for_each(|(b, out)| fill(b, OCB.min(channels - b * OCB), out));
        Weights { data, block }
    }

    pub(super) fn block(&self, b: usize) -> &[f32] {
        &self.data.get()[b * self.block..][..self.block]
    }
}

/// `len` values starting 64-byte aligned (a vector load of them never splits a cache
/// line), from the pool and back: every user writes all of them before reading, so
/// a pooled buffer is not zeroed first.
pub(super) struct Aligned {
    data: Vec<f32>,
    first: usize,
    len: usize,
}

impl Aligned {
    pub(super) fn new(len: usize) -> Aligned {
        let data = pool::scratch(len + 16);
        Aligned { first: data.as_ptr().align_offset(64), data, len }
    }
    pub(super) fn get(&self) -> &[f32] {
        &self.data[self.first..][..self.len]
    }
    pub(super) fn get_mut(&mut self) -> &mut [f32] {
        &mut self.data[self.first..][..self.len]
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        pool::give(std::mem::take(&mut self.data));
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

/// The output pointer, shared by threads that write disjoint rows.
pub(super) struct Out(pub(super) *mut f32);
// SAFETY: every driver hands its threads disjoint parts of the output.
unsafe impl Sync for Out {}
unsafe impl Send for Out {}

impl Out {
    /// # Safety
    /// `i` must lie inside the output.
    pub(super) unsafe fn at(&self, i: usize) -> *mut f32 {
        self.0.add(i)
    }
}

/// `pad [C, prow, wp]` = input rows `iy0 − ph ..` of image `img` from column `−pw` on,
/// zero outside the image.
pub(super) fn pad_band(g: &ConvGeom, x: &[f32], img: usize, iy0: usize, prow: usize, wp: usize, pad: &mut [f32]) {
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
