//! CPU kernels over plain slices, generic over [`crate::Float`]; one file per family, named
//! as its CUDA twin in maskfr-cuda's `kernels/*.cu` (prelu.rs ↔ prelu.cu) so each is found
//! from the other; conv, gemm and matmul have none (cuDNN and cuBLAS run them on a GPU).
//! Each forward kernel has its backward beside it; `tests/gradcheck.rs` checks every pair.

pub mod batchnorm;
pub mod conv;
pub mod elementwise;
pub mod gemm;
pub mod l2norm;
pub mod loss;
pub mod margin;
pub mod matmul;
pub mod prelu;
pub mod random;
pub mod reduce;
pub mod rows;
pub mod sgd;

/// The length of the pieces a buffer of `len`-element rows (planes, samples) is cut into:
/// a zero-size tensor (len 0) has an empty buffer, which gives no piece instead of a panic.
pub(crate) fn piece(len: usize) -> usize {
    len.max(1)
}

/// Below this many elements a loop runs on one thread: spawning costs more than it saves.
pub(crate) const PAR_MIN: usize = 1 << 15;
