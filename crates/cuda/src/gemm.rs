//! Matrix products through cuBLAS. Our tensors are row-major and cuBLAS is column-major, so
//! `C = op(A)·op(B)` is computed as `Cᵀ = op(B)ᵀ·op(A)ᵀ`, reading each row-major matrix as
//! its column-major transpose. Every dtype runs GemmEx accumulating in f32: f32 in plain FP32
//! unless the TF32 policy allows it for GEMMs (off by default, as PyTorch's matmul),
//! f16/bf16 on the tensor cores.

use crate::gpu::Gpu;
use crate::{Error, Result};
use cudarc::cublas::sys;
use maskfr_core::DType;
use std::ffi::c_void;

/// A row-major `rows × cols` operand at a device address, used transposed or not.
#[derive(Clone, Copy)]
pub struct Operand {
    pub ptr: u64,
    pub rows: usize,
    pub cols: usize,
    pub trans: bool,
}

impl Operand {
    fn op(&self) -> sys::cublasOperation_t {
        if self.trans {
            sys::cublasOperation_t::CUBLAS_OP_T
        } else {
            sys::cublasOperation_t::CUBLAS_OP_N
        }
    }
    /// (rows, cols) of op(self).
    pub fn shape(&self) -> (usize, usize) {
        if self.trans {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }
}

/// `c = op(a)·op(b) + beta·c` for a `m × n` row-major `c`.
pub fn gemm(gpu: &Gpu, dtype: DType, a: Operand, b: Operand, c: u64, beta: f32) -> Result<()> {
    let ((m, k), (_, n)) = (a.shape(), b.shape());
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        // An empty sum: cuBLAS would refuse the zero leading dimensions; the CPU gives zeros.
        return gpu.memset_zero(c, m * n * dtype.size());
    }
    if gpu.is_emulated() {
        return crate::emulated::gemm(dtype, a, b, c, beta);
    }
    let libs = gpu.libs()?;
    let alpha = 1f32;
    // One call for every dtype: COMPUTE_32F accumulates in f32 and, for f32 operands, is
    // plain FP32; COMPUTE_32F_FAST_TF32 lets f32 operands through TF32 tensor cores.
    let compute = if dtype == DType::F32 && crate::tf32().matmul {
        sys::cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32
    } else {
        sys::cublasComputeType_t::CUBLAS_COMPUTE_32F
    };
    let t = match dtype {
        DType::F32 => sys::cudaDataType_t::CUDA_R_32F,
        DType::F16 => sys::cudaDataType_t::CUDA_R_16F,
        DType::BF16 => sys::cudaDataType_t::CUDA_R_16BF,
    };
    let (lda, ldb, ldc) = (a.cols as i32, b.cols as i32, n as i32);
    // SAFETY: the addresses are live blocks holding the operands' elements in `dtype`; the
    // leading dimensions are the row lengths of the row-major storage.
    unsafe {
        cudarc::cublas::result::gemm_ex(
            libs.blas,
            b.op(),
            a.op(),
            n as i32,
            m as i32,
            k as i32,
            &alpha as *const f32 as *const c_void,
            b.ptr as *const c_void,
            t,
            ldb,
            a.ptr as *const c_void,
            t,
            lda,
            &beta as *const f32 as *const c_void,
            c as *mut c_void,
            t,
            ldc,
            compute,
            sys::cublasGemmAlgo_t::CUBLAS_GEMM_DFALT,
        )
    }
    .map_err(|e| Error(format!("cublas: gemmEx ({m}×{k}·{k}×{n}, {}): {e:?}", dtype.name())))
}
