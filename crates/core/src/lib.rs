//! maskfr-core: tensor storage, the CPU kernels and the backend seam.
//!
//! Kernels are plain functions over slices, generic over [`Float`] so the very code that
//! ships in f32 is checked by finite differences in f64 (`tests/gradcheck.rs`).
//! [`backend::backend_for`] is the single dispatch site from tensors to a device backend.

pub mod backend;
pub mod durable;
mod error;
pub mod float;
pub mod kernels;
pub mod memory;
pub mod peak;
pub mod pool;
pub mod random;
mod tensor;

pub use backend::{backend_for, Backend, BnOut, ConvParams, DeviceMemory, Margin, ScaleRule, SgdHyper};
pub use error::{Error, Result};
pub use float::Float;
pub use tensor::{DType, Device, DeviceBuffer, Tensor};
