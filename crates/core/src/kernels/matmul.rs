//! Dense matrix products, on the blocked GEMM of [`super::gemm`].

use super::gemm;
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
}

/// `c (a.rows × b.cols, row-major) = a·b`, or `c += a·b` when `accumulate`.
/// `threaded` lets the product split over the rayon pool.
pub fn matmul<T: Float>(a: Mat<T>, b: Mat<T>, c: &mut [T], accumulate: bool, threaded: bool) {
    assert_eq!(a.cols, b.rows, "matmul inner dimensions");
    assert!(a.data.len() >= a.rows * a.cols && b.data.len() >= b.rows * b.cols, "matmul operands too small");
    let (m, n) = (a.rows, b.cols);
    gemm::gemm(&gemm::DenseA(a), &gemm::DenseB(b), &gemm::DenseC::new(c, m, n), accumulate, threaded);
}
