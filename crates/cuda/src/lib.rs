//! maskfr-cuda: the GPU side. Libraries are loaded at run time (cudarc with dynamic
//! loading, CUDA 13), so the crate builds on machines without CUDA and every missing piece
//! becomes an [`Error`] naming the library and where it was looked for, never a panic.
//! Kernels are CUDA C sources compiled once per process by NVRTC; each names its CPU
//! reference in maskfr-core, which the GPU tests compare it with. [`install`] plugs the
//! backend into maskfr-core's dispatch.

pub mod alloc;
mod backend;
mod conv;
pub mod emulated;
mod gemm;
pub mod gpu;
mod kernels;
pub mod nccl;
mod nvrtc;
mod probe;
mod tf32;
mod transfers;

pub use backend::cuda_backend;

pub use kernels::{kernel_names, source, KERNELS};
pub use nvrtc::{choose_target, compile, nvrtc_version, supported_archs, Image, Target, MIN_ARCH};
pub use probe::{driver_version, library_version, probe, require, Gpu, LibraryProbe, Report, LIBRARIES};
pub use tf32::{set_tf32, tf32, Tf32};

pub use maskfr_core::{Error, Result};

/// Makes `cuda:N` tensors work: registers this backend with maskfr-core. Nothing is loaded
/// until a CUDA tensor is first made; a missing GPU or library is reported then.
pub fn install() {
    maskfr_core::backend::register_cuda(cuda_backend);
}
