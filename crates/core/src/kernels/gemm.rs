//! A blocked GEMM `C = A·B` (BLIS-style) whose operands are packed by pluggable packers, so
//! a convolution can feed its input straight into the packed panels (implicit im2col) and
//! store tiles straight into NCHW outputs. Generic over the float type: f32 on AVX-512 runs
//! an 8×32 register-tile kernel of 16 zmm accumulators; everything else (f64 in the gradient
//! checks, CPUs without AVX-512) runs a portable kernel over the same packing and blocking.

use super::matmul::Mat;
use crate::Float;
use rayon::prelude::*;
use std::any::TypeId;
use std::ops::Range;

/// Rows of a register tile (output channels divide by 8 in every IResNet layer).
pub const MR: usize = 8;
/// Columns of a register tile: two zmm vectors of f32.
pub const NR: usize = 32;
/// Columns of the half-width tile a narrow last panel runs.
const HALF_NR: usize = NR / 2;
/// Depth of a packed panel (a B micro-panel of KC×NR f32 is 32 KiB, L1-sized; measured
/// against 96–192 on Zen 4: deeper panels mean fewer passes over C).
const KC: usize = 256;
/// Rows of A packed at once (128 KiB of f32: stays in L2).
const MC: usize = MR * 32;
/// Columns of B packed at once.
const NC: usize = NR * 96;

/// Calls `fill(ir, rows, panel)` for each MR-row panel of a packed A block of `mc` rows and
/// depth `kc`, the panel zeroed first when it has fewer than MR real rows.
pub fn a_panels<T: Float>(out: &mut [T], mc: usize, kc: usize, mut fill: impl FnMut(usize, usize, &mut [T])) {
    for ir in (0..mc).step_by(MR) {
        let panel = &mut out[ir * kc..(ir + MR) * kc];
        let rows = MR.min(mc - ir);
        if rows < MR {
            panel.fill(T::zero());
        }
        fill(ir, rows, panel);
    }
}

/// Calls `fill(jr, cols, panel)` for each NR-column panel of a packed B block of `nc`
/// columns and depth `kc`, the panel zeroed first when it has fewer than NR real columns.
pub fn b_panels<T: Float>(out: &mut [T], nc: usize, kc: usize, mut fill: impl FnMut(usize, usize, &mut [T])) {
    for jr in (0..nc).step_by(NR) {
        let panel = &mut out[jr * kc..(jr + NR) * kc];
        let cols = NR.min(nc - jr);
        if cols < NR {
            panel.fill(T::zero());
        }
        fill(jr, cols, panel);
    }
}

/// Writes `src [cols × depth]` (row stride `ld`: a column's depth positions contiguous) into
/// a B panel transposed: `panel[p·NR + c] = src[c·ld + p]`. A packer that can produce a
/// column at a time contiguously (cheap copies) then pays one transpose, 16 × 16 blocks in
/// registers where AVX-512 is there, instead of a store per element 128 bytes apart.
pub fn transpose_into_panel<T: Float>(src: &[T], ld: usize, cols: usize, depth: usize, panel: &mut [T]) {
    let (mut cb, mut pb) = (0, 0);
    #[cfg(target_arch = "x86_64")]
    if TypeId::of::<T>() == TypeId::of::<f32>() && is_x86_feature_detected!("avx512f") {
        (cb, pb) = (cols / 16 * 16, depth / 16 * 16);
        assert!(src.len() >= (cols.max(1) - 1) * ld + depth && panel.len() >= depth * NR);
        for c in (0..cb).step_by(16) {
            for p in (0..pb).step_by(16) {
                // SAFETY: the block's 16 rows of 16 lie in `src` and its 16 rows of 16 in
                // `panel` (asserted above); f32 by the type check.
                unsafe {
                    x86::transpose16(
                        src.as_ptr().add(c * ld + p) as *const f32,
                        ld,
                        panel.as_mut_ptr().add(p * NR + c) as *mut f32,
                        NR,
                    )
                };
            }
        }
    }
    // What the blocks did not cover: the last columns, then the last positions of the rest.
    for c in 0..cols {
        let from = if c < cb { pb } else { 0 };
        for p in from..depth {
            panel[p * NR + c] = src[c * ld + p];
        }
    }
}

/// Writes MR rows `src[r·ld + t]` (t < len) into an A panel transposed:
/// `panel[t·MR + r] = src[r·ld + t]`, 16 positions at a time in registers where AVX-512 is
/// there.
pub fn transpose_into_a_panel<T: Float>(src: &[T], ld: usize, len: usize, panel: &mut [T]) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if TypeId::of::<T>() == TypeId::of::<f32>() && is_x86_feature_detected!("avx512f") {
        done = len / 16 * 16;
        assert!(len == 0 || (src.len() >= (MR - 1) * ld + len && panel.len() >= len * MR));
        for t in (0..done).step_by(16) {
            // SAFETY: rows of 16 from `t` lie in `src`, 16 × MR values from `t·MR` in `panel`
            // (asserted above); f32 by the type check.
            unsafe {
                x86::transpose8x16(src.as_ptr().add(t) as *const f32, ld, panel.as_mut_ptr().add(t * MR) as *mut f32)
            };
        }
    }
    for r in 0..MR {
        for t in done..len {
            panel[t * MR + r] = src[r * ld + t];
        }
    }
}

/// `row[c] = src[base[c] + offset]` where bit `c` of `valid` is set, else zero: one row of a
/// B panel whose columns are scattered over `src` (a conv tap across small images, where a
/// panel spans many short rows), by 16-lane gathers where AVX-512 is there.
///
/// # Safety
/// `base[c] + offset` must lie in `src` for every set bit `c` (bits ≥ NR are ignored).
pub unsafe fn gather_panel_row<T: Float>(src: &[T], base: &[i32; NR], offset: i32, valid: u32, row: &mut [T]) {
    let row = &mut row[..NR];
    #[cfg(target_arch = "x86_64")]
    if TypeId::of::<T>() == TypeId::of::<f32>() && is_x86_feature_detected!("avx512f") {
        return x86::gather_row(src.as_ptr() as *const f32, base, offset, valid, row.as_mut_ptr() as *mut f32);
    }
    for (c, d) in row.iter_mut().enumerate() {
        *d = if valid >> c & 1 == 1 { *src.get_unchecked((base[c] + offset) as usize) } else { T::zero() };
    }
}

/// `dst[t] = src[t·step]` (`src` ends at the last value read). Step 2 (a stride-2 conv's
/// input row) compacts 32 values into 16 in registers where AVX-512 is there.
pub fn copy_strided<T: Float>(dst: &mut [T], src: &[T], step: usize) {
    let n = dst.len();
    assert!(n == 0 || src.len() > (n - 1) * step, "copy_strided: {n} values every {step} from {}", src.len());
    if step == 1 {
        return dst.copy_from_slice(&src[..n]);
    }
    #[cfg(target_arch = "x86_64")]
    if step == 2 && TypeId::of::<T>() == TypeId::of::<f32>() && is_x86_feature_detected!("avx512f") {
        // SAFETY: sizes checked above; f32 by the type check.
        return unsafe { x86::compact2(dst.as_mut_ptr() as *mut f32, n, src.as_ptr() as *const f32, src.len()) };
    }
    dst.iter_mut().zip(src.iter().step_by(step)).for_each(|(d, &v)| *d = v);
}

/// Asks the cache for `data` ahead of its use (x86; nothing elsewhere).
pub fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    for line in (0..std::mem::size_of_val(data)).step_by(64) {
        // SAFETY: the address lies in `data`; a prefetch reads nothing architecturally.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                (data.as_ptr() as *const i8).add(line),
            )
        };
    }
}

/// Packs A (`rows × depth`) into MR-row panels: `out[(ir/MR·kc + p)·MR + r] = A[i0+ir+r, p0+p]`,
/// zero past the last row.
pub trait PackA<T>: Sync {
    fn rows(&self) -> usize;
    fn depth(&self) -> usize;
    fn pack(&self, i0: usize, mc: usize, p0: usize, kc: usize, out: &mut [T]);
}

/// Packs B (`depth × cols`) into NR-column panels: `out[(jr/NR·kc + p)·NR + c] = B[p0+p, j0+jr+c]`,
/// zero past the last column.
pub trait PackB<T>: Sync {
    fn cols(&self) -> usize;
    fn pack(&self, p0: usize, kc: usize, j0: usize, nc: usize, out: &mut [T]);
    /// Time to pack a value relative to a dense A's (the driver splits threads so that the
    /// operand every thread packs in full is the cheaper one).
    fn pack_cost(&self) -> usize {
        1
    }
}

/// An MR-row tile of C in memory as at most two dense pieces with one row stride: tile
/// column `c < split` of row `r` at `first + r·ld + c`, the rest at `second + r·ld + c − split`
/// (the tile of a conv output whose columns run into the next image).
#[derive(Clone, Copy)]
pub struct Tile<T> {
    pub first: *mut T,
    pub ld: usize,
    pub split: usize,
    pub second: *mut T,
}

impl<T> Tile<T> {
    /// One dense block.
    pub fn dense(first: *mut T, ld: usize) -> Self {
        Tile { first, ld, split: usize::MAX, second: first }
    }
}

/// Where C's tiles go.
///
/// # Safety
/// `dense` must return a [`Tile`] whose pieces are valid for the `MR × nr` block, and
/// `store` must write only C's elements `[i, i+mr) × [j, j+nr)`: the driver hands disjoint
/// tiles to different threads.
pub unsafe trait StoreC<T>: Sync {
    /// The `MR × nr` tile at `(i, j)` as memory the kernel writes directly, where it is one.
    fn dense(&self, i: usize, j: usize, nr: usize) -> Option<Tile<T>>;
    /// Writes (or adds) an `mr × nr` tile given row-major with row stride NR.
    fn store(&self, i: usize, j: usize, mr: usize, nr: usize, tile: &[T], add: bool);
}

/// `C = A·B`, or `C += A·B` when `accumulate`. Threads take disjoint column (or row) ranges
/// of C and each sums over the whole depth in the same order: results do not depend on the
/// thread count.
pub fn gemm<T: Float>(a: &impl PackA<T>, b: &impl PackB<T>, c: &impl StoreC<T>, accumulate: bool, threaded: bool) {
    let (m, k, n) = (a.rows(), a.depth(), b.cols());
    if m == 0 || n == 0 {
        return;
    }
    let threads = if threaded { rayon::current_num_threads() } else { 1 };
    let cuts = |len: usize, unit: usize| -> Vec<Range<usize>> {
        let mut cut: Vec<usize> = (0..threads).map(|t| (t * len / threads) / unit * unit).collect();
        cut.push(len);
        cut.windows(2).filter(|w| w[0] < w[1]).map(|w| w[0]..w[1]).collect()
    };
    // Threads split C's columns (each packs all of A) or rows (each packs all of B).
    let parts: Vec<(Range<usize>, Range<usize>)> = if n * b.pack_cost() >= m {
        cuts(n, NR).into_iter().map(|cols| (0..m, cols)).collect()
    } else {
        cuts(m, MR).into_iter().map(|rows| (rows, 0..n)).collect()
    };
    let run = |(rows, cols): &(Range<usize>, Range<usize>)| block(a, b, c, rows.clone(), cols.clone(), k, accumulate);
    if parts.len() > 1 {
        parts.par_iter().for_each(run);
    } else {
        parts.iter().for_each(run);
    }
}

/// One thread's share: rows × cols of C over the whole depth.
fn block<T: Float>(
    a: &impl PackA<T>,
    b: &impl PackB<T>,
    c: &impl StoreC<T>,
    rows: Range<usize>,
    cols: Range<usize>,
    k: usize,
    accumulate: bool,
) {
    if k == 0 {
        if !accumulate {
            let zeros = vec![T::zero(); MR * NR];
            for i in rows.clone().step_by(MR) {
                for j in cols.clone().step_by(NR) {
                    c.store(i, j, MR.min(rows.end - i), NR.min(cols.end - j), &zeros, false);
                }
            }
        }
        return;
    }
    let mut pa = vec![T::zero(); MC.min(rows.len().next_multiple_of(MR)) * KC];
    let mut pb = vec![T::zero(); NC.min(cols.len().next_multiple_of(NR)) * KC];
    let mut tmp = [T::zero(); MR * NR];
    for j0 in cols.clone().step_by(NC) {
        let nc = NC.min(cols.end - j0);
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            b.pack(p0, kc, j0, nc, &mut pb);
            let add = accumulate || p0 > 0;
            for i0 in rows.clone().step_by(MC) {
                let mc = MC.min(rows.end - i0);
                a.pack(i0, mc, p0, kc, &mut pa);
                for jr in (0..nc).step_by(NR) {
                    let nr = NR.min(nc - jr);
                    let panel_b = &pb[jr * kc..(jr + NR) * kc];
                    // A panel of at most half its columns runs half the kernel: the last
                    // panel of 7×7 images' 784 columns, whose full width would cost a
                    // thread an extra half panel of FMAs.
                    let width = if nr <= HALF_NR { HALF_NR } else { NR };
                    for ir in (0..mc).step_by(MR) {
                        let mr = MR.min(mc - ir);
                        let panel_a = &pa[ir * kc..(ir + MR) * kc];
                        let (i, j) = (i0 + ir, j0 + jr);
                        match c.dense(i, j, nr).filter(|_| mr == MR && nr == width) {
                            // SAFETY: `dense` promises an MR × nr block in these pieces.
                            Some(tile) => unsafe { micro(kc, panel_a, panel_b, width, tile, add) },
                            None => {
                                // SAFETY: `tmp` is an MR × NR block with row stride NR.
                                let tile = Tile::dense(tmp.as_mut_ptr(), NR);
                                unsafe { micro(kc, panel_a, panel_b, width, tile, false) };
                                c.store(i, j, mr, nr, &tmp, add);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The MR × `width` tile `c` = or += packed A panel · the first `width` (NR or HALF_NR)
/// columns of a packed B panel.
///
/// # Safety
/// `c`'s pieces must be valid for MR rows of `width` elements.
#[inline(always)]
unsafe fn micro<T: Float>(kc: usize, pa: &[T], pb: &[T], width: usize, c: Tile<T>, add: bool) {
    #[cfg(target_arch = "x86_64")]
    if TypeId::of::<T>() == TypeId::of::<f32>() && is_x86_feature_detected!("avx512f") {
        let (pa, pb) = (pa.as_ptr() as *const f32, pb.as_ptr() as *const f32);
        let c = Tile { first: c.first as *mut f32, ld: c.ld, split: c.split, second: c.second as *mut f32 };
        return match width {
            NR => x86::kernel::<2>(kc, pa, pb, c, add),
            _ => x86::kernel::<1>(kc, pa, pb, c, add),
        };
    }
    portable(kc, pa, pb, width, c, add)
}

/// [`micro`] in plain Rust, kept out of line: its accumulator array would otherwise give
/// every AVX-512 call a kilobyte stack frame to set up (5% of a depth-64 product).
///
/// # Safety
/// As [`micro`].
#[inline(never)]
unsafe fn portable<T: Float>(kc: usize, pa: &[T], pb: &[T], width: usize, c: Tile<T>, add: bool) {
    let mut acc = [[T::zero(); NR]; MR];
    for p in 0..kc {
        let bp = &pb[p * NR..p * NR + width];
        for (r, row) in acc.iter_mut().enumerate() {
            let av = pa[p * MR + r];
            row.iter_mut().zip(bp).for_each(|(s, &bv)| *s += av * bv);
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (col, &v) in row.iter().enumerate().take(width) {
            let d = if col < c.split { c.first.add(r * c.ld + col) } else { c.second.add(r * c.ld + col - c.split) };
            *d = if add { *d + v } else { v };
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use super::{Tile, MR, NR};
    use std::arch::x86_64::*;

    /// `dst[t] = src[2t]` for t < n, reading only `src[..len]`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn compact2(dst: *mut f32, n: usize, src: *const f32, len: usize) {
        let lanes = |k: usize| if k >= 16 { 0xffff } else { ((1u32 << k) - 1) as __mmask16 };
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        // The next panel of a conv's columns reads on from here: fetch that now, one panel
        // ahead (each panel visits every channel's plane, too many streams for the hardware
        // prefetcher). A prefetch never faults, wherever it points.
        for line in (0..2 * super::NR).step_by(16) {
            _mm_prefetch::<_MM_HINT_T0>(src.wrapping_add(2 * n + line) as *const i8);
        }
        for c in (0..n).step_by(16) {
            let at = 2 * c;
            // Masked lanes are never read; a load with none is skipped (its address may lie
            // past the source, where even an all-masked load costs a fault assist).
            let load = |from: usize| match lanes(len.saturating_sub(from)) {
                0 => _mm512_setzero_ps(),
                m => _mm512_maskz_loadu_ps(m, src.add(from)),
            };
            let v = _mm512_permutex2var_ps(load(at), even, load(at + 16));
            _mm512_mask_storeu_ps(dst.add(c), lanes(n - c), v);
        }
    }

    /// [`super::gather_panel_row`] for f32.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn gather_row(src: *const f32, base: &[i32; NR], offset: i32, valid: u32, row: *mut f32) {
        for h in 0..NR / 16 {
            let idx =
                _mm512_add_epi32(_mm512_loadu_si512(base.as_ptr().add(h * 16) as *const _), _mm512_set1_epi32(offset));
            let lanes = (valid >> (h * 16)) as __mmask16;
            let v = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), lanes, idx, src);
            _mm512_storeu_ps(row.add(h * 16), v);
        }
    }

    /// `dst[k·ldd + i] = src[i·ld + k]` for a 16 × 16 block.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn transpose16(src: *const f32, ld: usize, dst: *mut f32, ldd: usize) {
        let r: [__m512; 16] = std::array::from_fn(|i| _mm512_loadu_ps(src.add(i * ld)));
        for (k, col) in columns16(r).into_iter().enumerate() {
            _mm512_storeu_ps(dst.add(k * ldd), col);
        }
    }

    /// `dst[k·MR + i] = src[i·ld + k]` for MR = 8 rows of 16: the 16 × 16 transpose with
    /// the last eight rows zero, each column's first half stored.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn transpose8x16(src: *const f32, ld: usize, dst: *mut f32) {
        let r: [__m512; 16] =
            std::array::from_fn(|i| if i < MR { _mm512_loadu_ps(src.add(i * ld)) } else { _mm512_setzero_ps() });
        for (k, col) in columns16(r).into_iter().enumerate() {
            _mm256_storeu_ps(dst.add(k * MR), _mm512_castps512_ps256(col));
        }
    }

    /// The 16 columns of the 16 × 16 block whose rows are `r`.
    #[target_feature(enable = "avx512f")]
    /// 32-bit, then 64-bit interleaves, then two rounds of 128-bit lane shuffles leave
    /// register k holding column k.
    pub(crate) unsafe fn columns16(r: [__m512; 16]) -> [__m512; 16] {
        // Lane L of t[2i] holds rows 2i, 2i+1 of columns 4L, 4L+1; t[2i+1] of 4L+2, 4L+3.
        let t: [__m512; 16] = std::array::from_fn(|k| {
            let (a, b) = (r[k & !1], r[k | 1]);
            if k % 2 == 0 {
                _mm512_unpacklo_ps(a, b)
            } else {
                _mm512_unpackhi_ps(a, b)
            }
        });
        // u[4i + m], lane L: rows 4i…4i+3 of column 4L + m.
        let u: [__m512; 16] = std::array::from_fn(|k| {
            let (i, m) = (k / 4, k % 4);
            let (a, b) = (_mm512_castps_pd(t[4 * i + m / 2]), _mm512_castps_pd(t[4 * i + 2 + m / 2]));
            _mm512_castpd_ps(if m % 2 == 0 { _mm512_unpacklo_pd(a, b) } else { _mm512_unpackhi_pd(a, b) })
        });
        // v[8i + j] (j < 4): rows 8i…8i+7 of columns j and 8 + j; v[8i + 4 + j]: of 4 + j, 12 + j.
        let v: [__m512; 16] = std::array::from_fn(|k| {
            let (i, j) = (k / 8, k % 4);
            let (a, b) = (u[8 * i + j], u[8 * i + 4 + j]);
            if k % 8 < 4 {
                _mm512_shuffle_f32x4::<0x88>(a, b)
            } else {
                _mm512_shuffle_f32x4::<0xdd>(a, b)
            }
        });
        std::array::from_fn(|k| {
            let (a, b) = (v[k % 8], v[8 + k % 8]);
            if k < 8 {
                _mm512_shuffle_f32x4::<0x88>(a, b)
            } else {
                _mm512_shuffle_f32x4::<0xdd>(a, b)
            }
        })
    }

    /// MR × 16·V accumulators (V zmm per row): per depth step V B loads, eight broadcasts,
    /// 8·V FMAs.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn kernel<const V: usize>(kc: usize, pa: *const f32, pb: *const f32, c: Tile<f32>, add: bool) {
        // C's tile was last touched a whole panel ago and is likely out of L1: fetch it now,
        // it is needed only after the depth loop. (The pieces' addresses for each 16 lanes:
        // a prefetch never faults, so lanes past a piece's end may point anywhere.)
        let piece = |r: usize, col: usize| {
            if col < c.split {
                c.first.wrapping_add(r * c.ld + col)
            } else {
                c.second.wrapping_add(r * c.ld + col - c.split)
            }
        };
        if add {
            for r in 0..MR {
                for h in 0..V {
                    _mm_prefetch::<_MM_HINT_T0>(piece(r, h * 16) as *const i8);
                }
            }
        }
        let mut acc = [[_mm512_setzero_ps(); V]; MR];
        for p in 0..kc {
            let b: [__m512; V] = std::array::from_fn(|h| _mm512_loadu_ps(pb.add(p * NR + h * 16)));
            let ap = pa.add(p * MR);
            for (r, row) in acc.iter_mut().enumerate() {
                let a = _mm512_set1_ps(*ap.add(r));
                for h in 0..V {
                    row[h] = _mm512_fmadd_ps(a, b[h], row[h]);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (h, &v) in row.iter().enumerate() {
                let col = h * 16;
                if col + 16 <= c.split || col >= c.split {
                    let d = piece(r, col);
                    _mm512_storeu_ps(d, if add { _mm512_add_ps(_mm512_loadu_ps(d), v) } else { v });
                    continue;
                }
                // The split falls inside these 16 lanes: the low ones go to the first piece,
                // the rest to the second, each a masked move (masked lanes are not touched).
                let low = ((1u32 << (c.split - col)) - 1) as __mmask16;
                let (d0, d1) =
                    (c.first.add(r * c.ld + col), c.second.wrapping_add(r * c.ld + col).wrapping_sub(c.split));
                let v = if add {
                    let old = _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(low, d0), !low, d1);
                    _mm512_add_ps(old, v)
                } else {
                    v
                };
                _mm512_mask_storeu_ps(d0, low, v);
                _mm512_mask_storeu_ps(d1, !low, v);
            }
        }
    }
}

/// A dense matrix (`Mat`) as the A operand.
pub struct DenseA<'a, T>(pub Mat<'a, T>);
/// A dense matrix (`Mat`) as the B operand.
pub struct DenseB<'a, T>(pub Mat<'a, T>);

impl<T: Float> PackA<T> for DenseA<'_, T> {
    fn rows(&self) -> usize {
        self.0.rows
    }
    fn depth(&self) -> usize {
        self.0.cols
    }
    fn pack(&self, i0: usize, mc: usize, p0: usize, kc: usize, out: &mut [T]) {
        let m = &self.0;
        a_panels(out, mc, kc, |ir, rows, panel| {
            if m.trans {
                // element (i, p) of the transpose of a stored `cols × rows` matrix: rows of a
                // panel are contiguous for each p
                for p in 0..kc {
                    let at = (p0 + p) * m.rows + i0 + ir;
                    panel[p * MR..p * MR + rows].copy_from_slice(&m.data[at..at + rows]);
                }
            } else if rows == MR {
                let first = (i0 + ir) * m.cols + p0;
                transpose_into_a_panel(&m.data[first..first + (MR - 1) * m.cols + kc], m.cols, kc, panel);
            } else {
                // the last rows: sequential row streams in, one contiguous panel out
                let src: Vec<&[T]> = (0..rows).map(|r| &m.data[(i0 + ir + r) * m.cols + p0..][..kc]).collect();
                for (p, dst) in panel.chunks_exact_mut(MR).enumerate() {
                    for (d, row) in dst.iter_mut().zip(&src) {
                        *d = row[p];
                    }
                }
            }
        });
    }
}

impl<T: Float> PackB<T> for DenseB<'_, T> {
    fn cols(&self) -> usize {
        self.0.cols
    }
    fn pack(&self, p0: usize, kc: usize, j0: usize, nc: usize, out: &mut [T]) {
        let m = &self.0;
        b_panels(out, nc, kc, |jr, cols, panel| {
            for p in 0..kc {
                let dst = &mut panel[p * NR..p * NR + cols];
                if m.trans {
                    dst.iter_mut().enumerate().for_each(|(c, d)| *d = m.data[(j0 + jr + c) * m.rows + p0 + p]);
                } else {
                    let at = (p0 + p) * m.cols + j0 + jr;
                    dst.copy_from_slice(&m.data[at..at + cols]);
                }
            }
        });
    }
}

/// A dense row-major `rows × cols` C.
pub struct DenseC<T> {
    ptr: *mut T,
    cols: usize,
}

// SAFETY: threads write disjoint tiles (see `StoreC`).
unsafe impl<T: Send> Sync for DenseC<T> {}

impl<T> DenseC<T> {
    /// C over `data` (`rows × cols`, row-major), exclusively borrowed for the product.
    pub fn new(data: &mut [T], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "C buffer too small");
        DenseC { ptr: data.as_mut_ptr(), cols }
    }
}

// SAFETY: tiles stay inside the `rows × cols` buffer checked in `new`.
unsafe impl<T: Float> StoreC<T> for DenseC<T> {
    fn dense(&self, i: usize, j: usize, _nr: usize) -> Option<Tile<T>> {
        // SAFETY: (i, j) is inside C; the driver only asks for full tiles inside it.
        Some(Tile::dense(unsafe { self.ptr.add(i * self.cols + j) }, self.cols))
    }
    fn store(&self, i: usize, j: usize, mr: usize, nr: usize, tile: &[T], add: bool) {
        for r in 0..mr {
            // SAFETY: rows i..i+mr and columns j..j+nr lie inside C.
            let dst = unsafe { std::slice::from_raw_parts_mut(self.ptr.add((i + r) * self.cols + j), nr) };
            dst.iter_mut().zip(&tile[r * NR..r * NR + nr]).for_each(|(d, &v)| *d = if add { *d + v } else { v });
        }
    }
}
