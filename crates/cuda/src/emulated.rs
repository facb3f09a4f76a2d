//! The emulated device (MASKFR_CUDA_EMULATE=1): `cuda:N` runs the backend's own code on the
//! CPU, so CI without a GPU still tests it against the CPU backend. Everything above this
//! file is unchanged: the caching allocator, the op dispatch, every kernel's launch
//! configuration and argument list. Here, and only here, the device differs:
//! - memory is host memory in guarded mappings (maskfr-cuda-emu); copies are plain and
//!   synchronous, each checked to lie inside one allocation;
//! - kernels are the same .cu sources compiled as C++ and launched with the same grid,
//!   block, shared memory and parameter array (checked against the kernel's signature);
//! - the library calls take maskfr-core's CPU kernels instead: cuDNN convolutions
//!   ([`conv`]) and cuBLAS GEMMs ([`gemm`]), in f32 whatever the storage dtype (as the
//!   libraries accumulate), with TF32 never used; NCCL on one rank only (crate::nccl: the
//!   bucket copies and casts run, the collective on one rank is the identity or a copy).

use crate::conv::{Direction, Operands, PlanKey};
use crate::gemm::Operand;
use crate::gpu::Arg;
use crate::{Error, Result};
use cudarc::driver::LaunchConfig;
use half::{bf16, f16};
use maskfr_core::kernels::conv::{conv2d_backward_input, conv2d_backward_weight, conv2d_forward, ConvGeom};
use maskfr_core::kernels::matmul::{matmul, Mat};
use maskfr_core::DType;
use std::ffi::c_void;
use std::sync::OnceLock;

/// The environment variable that turns `cuda:N` into the emulated device.
pub const VAR: &str = "MASKFR_CUDA_EMULATE";

/// Whether MASKFR_CUDA_EMULATE=1 (read once per process).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var(VAR).as_deref() == Ok("1"))
}

fn emu<T>(r: std::result::Result<T, String>) -> Result<T> {
    r.map_err(Error)
}

pub(crate) fn alloc(bytes: usize) -> Result<u64> {
    maskfr_cuda_emu::alloc(bytes).ok_or_else(|| Error(format!("emulated device: cannot map {bytes} bytes")))
}

pub(crate) fn free(ptr: u64) {
    maskfr_cuda_emu::free(ptr)
}

/// Block `ptr` now holds `bytes` (poisoned; writes past them fail the launch).
pub(crate) fn holds(ptr: u64, bytes: usize) -> Result<()> {
    emu(maskfr_cuda_emu::mark(ptr, bytes))
}

fn range(what: &str, ptr: u64, bytes: usize) -> Result<()> {
    maskfr_cuda_emu::check_range(ptr, bytes).map_err(|e| Error(format!("emulated device: {what}: {e}")))
}

pub(crate) fn memset_zero(ptr: u64, bytes: usize) -> Result<()> {
    range("memset", ptr, bytes)?;
    // SAFETY: the range lies inside one live allocation (checked).
    unsafe { std::ptr::write_bytes(ptr as *mut u8, 0, bytes) };
    Ok(())
}

pub(crate) fn copy(dst: u64, src: u64, bytes: usize) -> Result<()> {
    range("copy to", dst, bytes)?;
    range("copy from", src, bytes)?;
    // SAFETY: both ranges lie inside live allocations (checked); they may overlap.
    unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, bytes) };
    Ok(())
}

pub(crate) fn write(dst: u64, src: &[u8]) -> Result<()> {
    range("copy to device", dst, src.len())?;
    // SAFETY: the range lies inside one live allocation (checked).
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) };
    Ok(())
}

pub(crate) fn read(dst: &mut [u8], src: u64) -> Result<()> {
    range("copy to host", src, dst.len())?;
    // SAFETY: as `write`.
    unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len()) };
    Ok(())
}

/// Runs the kernel with `cuLaunchKernel`'s parameter array: a pointer to each argument.
pub(crate) fn launch(module: &str, name: &str, cfg: LaunchConfig, args: &[Arg]) -> Result<()> {
    // Each argument's bytes in a slot of its own; 4-byte ones are the slot's low half.
    let slots: Vec<u64> = args
        .iter()
        .map(|a| match *a {
            Arg::Ptr(v) | Arg::U64(v) => v,
            Arg::I64(v) => v as u64,
            Arg::F64(v) => v.to_bits(),
            Arg::I32(v) => u64::from(v as u32),
            Arg::F32(v) => u64::from(v.to_bits()),
        })
        .collect();
    let sizes: Vec<usize> = args.iter().map(|a| if matches!(a, Arg::I32(_) | Arg::F32(_)) { 4 } else { 8 }).collect();
    let params: Vec<*mut c_void> = slots.iter().map(|s| s as *const u64 as *mut c_void).collect();
    // SAFETY: as on a GPU, the call sites pass live blocks of the sizes the kernels expect;
    // the emulator reports accesses outside them instead of corrupting memory.
    emu(unsafe {
        maskfr_cuda_emu::launch(module, name, cfg.grid_dim, cfg.block_dim, cfg.shared_mem_bytes, &params, &sizes)
    })
}

/// `n` values of `dtype` at `ptr`, as f32.
fn load(ptr: u64, n: usize, dtype: DType) -> Result<Vec<f32>> {
    range("library call operand", ptr, n * dtype.size())?;
    // SAFETY: the range lies inside one live allocation (checked).
    Ok(unsafe {
        match dtype {
            DType::F32 => std::slice::from_raw_parts(ptr as *const f32, n).to_vec(),
            DType::F16 => std::slice::from_raw_parts(ptr as *const f16, n).iter().map(|v| v.to_f32()).collect(),
            DType::BF16 => std::slice::from_raw_parts(ptr as *const bf16, n).iter().map(|v| v.to_f32()).collect(),
        }
    })
}

/// Stores f32 `v` at `ptr` as `dtype` (rounded to nearest even, as the libraries do).
fn store(ptr: u64, v: &[f32], dtype: DType) -> Result<()> {
    range("library call result", ptr, v.len() * dtype.size())?;
    // SAFETY: the range lies inside one live allocation (checked).
    unsafe {
        match dtype {
            DType::F32 => std::ptr::copy_nonoverlapping(v.as_ptr(), ptr as *mut f32, v.len()),
            DType::F16 => {
                let out = std::slice::from_raw_parts_mut(ptr as *mut f16, v.len());
                out.iter_mut().zip(v).for_each(|(o, x)| *o = f16::from_f32(*x));
            }
            DType::BF16 => {
                let out = std::slice::from_raw_parts_mut(ptr as *mut bf16, v.len());
                out.iter_mut().zip(v).for_each(|(o, x)| *o = bf16::from_f32(*x));
            }
        }
    }
    Ok(())
}

/// cuBLAS's `c = op(a)·op(b) + beta·c` (see crate::gemm) by maskfr-core's matmul.
pub(crate) fn gemm(dtype: DType, a: Operand, b: Operand, c: u64, beta: f32) -> Result<()> {
    let ((m, _), (_, n)) = (a.shape(), b.shape());
    let (av, bv) = (load(a.ptr, a.rows * a.cols, dtype)?, load(b.ptr, b.rows * b.cols, dtype)?);
    fn mat(v: &[f32], o: Operand) -> Mat<'_, f32> {
        if o.trans {
            Mat::t(v, o.rows, o.cols)
        } else {
            Mat::new(v, o.rows, o.cols)
        }
    }
    let mut out = if beta == 0.0 { vec![0f32; m * n] } else { load(c, m * n, dtype)? };
    out.iter_mut().for_each(|v| *v *= beta);
    matmul(mat(&av, a), mat(&bv, b), &mut out, true, true);
    store(c, &out, dtype)
}

/// cuDNN's direction `d` of the convolution `key` (output shape `y`) by maskfr-core's
/// convolution kernels; the written operand is overwritten, as cuDNN does with beta 0.
pub(crate) fn conv(key: PlanKey, y: [usize; 4], d: Direction, ops: &Operands) -> Result<()> {
    let g = ConvGeom::new(&key.x, &key.w, key.stride, key.pad)?;
    let (nx, nw, ny) = (key.x.iter().product(), key.w.iter().product(), y.iter().product());
    let t = key.dtype;
    match d {
        Direction::Forward => {
            let mut out = vec![0f32; ny];
            conv2d_forward(&g, &load(ops.x, nx, t)?, &load(ops.w, nw, t)?, None, &mut out);
            store(ops.y, &out, t)
        }
        Direction::BackwardData => {
            let mut out = vec![0f32; nx];
            conv2d_backward_input(&g, &load(ops.y, ny, t)?, &load(ops.w, nw, t)?, &mut out);
            store(ops.x, &out, t)
        }
        Direction::BackwardFilter => {
            let mut out = vec![0f32; nw];
            conv2d_backward_weight(&g, &load(ops.y, ny, t)?, &load(ops.x, nx, t)?, &mut out);
            store(ops.w, &out, t)
        }
    }
}

/// What `probe()` reports on the emulated device: every library stands in, one device.
pub(crate) fn report() -> crate::Report {
    let stand_in = |name| match name {
        "cuda" | "nvrtc" => Some("emulated: the kernels' .cu sources compiled as C++ (maskfr-cuda-emu)".into()),
        "cublas" | "cudnn" => Some("emulated: maskfr-core's CPU kernels".into()),
        "nccl" => Some("emulated: one rank".into()),
        _ => None,
    };
    crate::Report {
        libraries: crate::LIBRARIES
            .iter()
            .map(|&(name, purpose)| crate::LibraryProbe { name, purpose, loaded: stand_in(name), searched: Vec::new() })
            .collect(),
        driver_version: None,
        gpus: vec![crate::probe::Gpu {
            index: 0,
            name: format!("emulated CUDA device ({VAR}=1)"),
            memory_bytes: 0,
            arch: 0,
            target: Ok("C++ for this CPU, built with the crate".into()),
        }],
        problem: None,
    }
}
