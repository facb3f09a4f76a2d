//! Matrix products through the `gemm` crate (vectorised, AVX-512 where present).

use crate::Float;

/// A logical `rows × cols` matrix; `trans` means it is stored as its transpose (`cols × rows`,
/// row-major), so `Aᵀ·B` needs no copy.
#[derive(Clone, Copy)]
pub struct Mat<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub trans: bool,
}

impl<'a, T> Mat<'a, T> {
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Mat { data, rows, cols, trans: false }
    }
    /// The transpose of a stored `rows × cols` row-major matrix.
    pub fn t(data: &'a [T], rows: usize, cols: usize) -> Self {
        Mat { data, rows: cols, cols: rows, trans: true }
    }
    /// (row stride, column stride) of the logical matrix in `data`.
    fn strides(&self) -> (isize, isize) {
        if self.trans {
            (1, self.rows as isize)
        } else {
            (self.cols as isize, 1)
        }
    }
}

/// `c (a.rows × b.cols, row-major) = a·b`, or `c += a·b` when `accumulate`.
/// `threaded` lets gemm split the product over the rayon pool.
pub fn matmul<T: Float>(a: Mat<T>, b: Mat<T>, c: &mut [T], accumulate: bool, threaded: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "matmul inner dimensions");
    assert!(a.data.len() >= m * k && b.data.len() >= k * n && c.len() >= m * n, "matmul buffers too small");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(T::zero());
        }
        return;
    }
    let (a_rs, a_cs) = a.strides();
    let (b_rs, b_cs) = b.strides();
    let par = if threaded { gemm::Parallelism::Rayon(rayon::current_num_threads()) } else { gemm::Parallelism::None };
    // SAFETY: the asserts above bound every index gemm touches (m·k, k·n, m·n elements with
    // the strides computed from the same dimensions); `c` is exclusively borrowed.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            T::one(),
            T::one(),
            false,
            false,
            false,
            par,
        );
    }
}
