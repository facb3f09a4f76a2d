//! Row gather and scatter along dimension 0 (routing samples to different heads).

use super::piece;
use crate::Float;

/// `out[i] = x[idx[i]]`, rows of `width` elements.
pub fn index_rows<T: Float>(width: usize, x: &[T], idx: &[usize], out: &mut [T]) {
    for (dst, &r) in out.chunks_mut(piece(width)).zip(idx) {
        dst.copy_from_slice(&x[r * width..(r + 1) * width]);
    }
}

/// `out[idx[i]] += x[i]` into a zeroed `out` (the backward of [`index_rows`]).
pub fn scatter_rows<T: Float>(width: usize, x: &[T], idx: &[usize], out: &mut [T]) {
    for (src, &r) in x.chunks(piece(width)).zip(idx) {
        out[r * width..(r + 1) * width].iter_mut().zip(src).for_each(|(o, &v)| *o += v);
    }
}

/// `out[idx[i]] = x[i]`, rows of `width` elements (writes one class shard's rows in place).
pub fn copy_rows<T: Float>(width: usize, idx: &[usize], x: &[T], out: &mut [T]) {
    for (src, &r) in x.chunks(piece(width)).zip(idx) {
        out[r * width..(r + 1) * width].copy_from_slice(src);
    }
}
