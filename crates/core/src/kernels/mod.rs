//! CPU kernels over plain slices, generic over [`crate::Float`]; one file per family.
//! Each forward kernel has its backward beside it; `tests/gradcheck.rs` checks every pair.

pub mod conv;
mod direct;
pub mod elementwise;
pub mod gemm;
pub mod loss;
pub mod norm;
pub mod optim;
pub mod pointwise;
pub mod reduce;
pub mod rows;
pub mod tiled;

/// Below this many elements a loop runs on one thread: spawning costs more than it saves.
pub(crate) const PAR_MIN: usize = 1 << 15;
