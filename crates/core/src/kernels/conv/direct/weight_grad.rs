//! The weight gradient of 3×3 convs: tiles of one input channel's 9 taps × OCB output
//! channels summed over every position.

use super::super::ConvGeom;
use super::layout::{pad_band, Aligned, Out, OCB};
use crate::kernels::gemm::transpose_into_panel;
use rayon::prelude::*;
use std::arch::x86_64::*;

/// `gw [O, C, 3, 3] = Σ_(n, oy, ox) gy[n, o, oy, ox] · xpad[n, c, oy·sh + ki, ox·sw + kj]`.
/// A tile holds one input channel's 9 taps × OCB output channels and runs over every
/// position of an image: per position two vectors of gy (laid out position-major for the
/// block, once per image) and 9 broadcasts of the padded input. Threads take blocks of
/// output channels (and, when there are fewer blocks than threads, ranges of input
/// channels), each summing its part over the images in order: the result does not depend
/// on the threads. The implicit GEMM packed every input value 9 times per thread here,
/// a fifth of the time at 28².
pub(super) fn weight_grad(g: &ConvGeom, gy: &[f32], x: &[f32], gw: &mut [f32]) {
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
