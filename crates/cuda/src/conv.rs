//! Convolutions through cuDNN. The first call for a shape (and dtype) measures cuDNN's
//! algorithms for that direction with `cudnnFind*AlgorithmEx` (PyTorch's
//! `cudnn.benchmark = True`), keeps the fastest whose workspace fits, and every later call
//! reuses it; workspaces come from the caching allocator. Math types as PyTorch sets them
//! before Find: tensor-op math for f16/bf16; for f32, default math (TF32 allowed) or FMA
//! math (no TF32) by the TF32 policy, which is part of the plan's key.

use crate::gpu::{Gpu, Libs};
use crate::{Error, Result};
use cudarc::cudnn::sys;
use maskfr_core::DType;
use std::ffi::c_void;

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct PlanKey {
    pub x: [usize; 4],
    pub w: [usize; 4],
    pub stride: [usize; 2],
    pub pad: [usize; 2],
    pub dtype: DType,
    /// f32 only: TF32 tensor cores allowed ([`crate::Tf32::conv`]).
    pub tf32: bool,
}

impl PlanKey {
    /// The key of a convolution of `x` by `w` in `dtype` under the current TF32 policy.
    pub fn new(x: &[usize], w: &[usize], p: maskfr_core::ConvParams, dtype: DType) -> PlanKey {
        let four = |s: &[usize]| [s[0], s[1], s[2], s[3]];
        let tf32 = dtype == DType::F32 && crate::tf32().conv;
        PlanKey { x: four(x), w: four(w), stride: p.stride, pad: p.pad, dtype, tf32 }
    }

    /// The math type Find searches with and every call runs with.
    fn math(&self) -> sys::cudnnMathType_t {
        use sys::cudnnMathType_t as M;
        match (self.dtype, self.tf32) {
            (DType::F16 | DType::BF16, _) => M::CUDNN_TENSOR_OP_MATH,
            (DType::F32, true) => M::CUDNN_DEFAULT_MATH,
            (DType::F32, false) => M::CUDNN_FMA_MATH,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forward,
    BackwardData,
    BackwardFilter,
}

#[derive(Clone, Copy)]
enum Algo {
    Forward(sys::cudnnConvolutionFwdAlgo_t),
    BackwardData(sys::cudnnConvolutionBwdDataAlgo_t),
    BackwardFilter(sys::cudnnConvolutionBwdFilterAlgo_t),
}

#[derive(Clone, Copy)]
struct Choice {
    algo: Algo,
    workspace: usize,
    math: sys::cudnnMathType_t,
}

/// The descriptors of one convolution shape and the algorithm chosen per direction.
pub struct Plan {
    x: sys::cudnnTensorDescriptor_t,
    y: sys::cudnnTensorDescriptor_t,
    w: sys::cudnnFilterDescriptor_t,
    conv: sys::cudnnConvolutionDescriptor_t,
    chosen: [Option<Choice>; 3],
}

fn dnn(what: &str, s: sys::cudnnStatus_t) -> Result<()> {
    s.result().map_err(|e| Error(format!("cudnn: {what}: {e:?}")))
}

fn data_type(d: DType) -> sys::cudnnDataType_t {
    match d {
        DType::F32 => sys::cudnnDataType_t::CUDNN_DATA_FLOAT,
        DType::F16 => sys::cudnnDataType_t::CUDNN_DATA_HALF,
        DType::BF16 => sys::cudnnDataType_t::CUDNN_DATA_BFLOAT16,
    }
}

fn dims(v: [usize; 4]) -> [i32; 4] {
    v.map(|d| d as i32)
}

impl Plan {
    fn new(k: &PlanKey, y: [usize; 4]) -> Result<Plan> {
        let t = data_type(k.dtype);
        let nchw = sys::cudnnTensorFormat_t::CUDNN_TENSOR_NCHW;
        let mut p = Plan {
            x: std::ptr::null_mut(),
            y: std::ptr::null_mut(),
            w: std::ptr::null_mut(),
            conv: std::ptr::null_mut(),
            chosen: [None; 3],
        };
        // SAFETY: each descriptor is created before it is set; `Drop` destroys what exists.
        unsafe {
            let [xn, xc, xh, xw] = dims(k.x);
            let [yn, yc, yh, yw] = dims(y);
            let [o, i, kh, kw] = dims(k.w);
            dnn("tensor descriptor", sys::cudnnCreateTensorDescriptor(&mut p.x))?;
            dnn("tensor descriptor", sys::cudnnSetTensor4dDescriptor(p.x, nchw, t, xn, xc, xh, xw))?;
            dnn("tensor descriptor", sys::cudnnCreateTensorDescriptor(&mut p.y))?;
            dnn("tensor descriptor", sys::cudnnSetTensor4dDescriptor(p.y, nchw, t, yn, yc, yh, yw))?;
            dnn("filter descriptor", sys::cudnnCreateFilterDescriptor(&mut p.w))?;
            dnn("filter descriptor", sys::cudnnSetFilter4dDescriptor(p.w, t, nchw, o, i, kh, kw))?;
            dnn("conv descriptor", sys::cudnnCreateConvolutionDescriptor(&mut p.conv))?;
            let [sh, sw] = k.stride.map(|v| v as i32);
            let [ph, pw] = k.pad.map(|v| v as i32);
            // Accumulate in f32 for every storage dtype (PyTorch's choice for f16/bf16 too).
            let acc = sys::cudnnDataType_t::CUDNN_DATA_FLOAT;
            let mode = sys::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION;
            dnn("conv descriptor", sys::cudnnSetConvolution2dDescriptor(p.conv, ph, pw, sh, sw, 1, 1, mode, acc))?;
        }
        Ok(p)
    }
}

impl Drop for Plan {
    fn drop(&mut self) {
        // SAFETY: every non-null descriptor was created by `Plan::new` and is freed once.
        unsafe {
            if !self.x.is_null() {
                sys::cudnnDestroyTensorDescriptor(self.x);
            }
            if !self.y.is_null() {
                sys::cudnnDestroyTensorDescriptor(self.y);
            }
            if !self.w.is_null() {
                sys::cudnnDestroyFilterDescriptor(self.w);
            }
            if !self.conv.is_null() {
                sys::cudnnDestroyConvolutionDescriptor(self.conv);
            }
        }
    }
}

/// The device addresses of one call: x, w and y (whichever of them is written).
pub struct Operands {
    pub x: u64,
    pub w: u64,
    pub y: u64,
}

/// The largest workspace an algorithm may take: a quarter of the free memory, at most 1 GiB.
fn workspace_limit() -> usize {
    let free = cudarc::driver::result::mem_get_info().map(|(f, _)| f).unwrap_or(0);
    (free / 4).min(1 << 30)
}

/// cuDNN's measurements of one direction (three perf struct types, the same fields) as
/// `(algorithm, status, workspace, math type)` rows.
macro_rules! measured {
    ($r:expr, $count:expr, $algo:path) => {
        $r[..$count as usize].iter().map(|r| ($algo(r.algo), r.status, r.memory, r.mathType)).collect()
    };
}

/// Measures the algorithms of direction `d` on these operands and keeps the fastest that fits.
fn choose(gpu: &Gpu, libs: &Libs, key: &PlanKey, p: &Plan, d: Direction, ops: &Operands) -> Result<Choice> {
    const N: usize = 16;
    // Measured once per shape: cached blocks go back first (so the measurement is not
    // limited by memory the cache merely holds), and the workspace stays outside the cache.
    gpu.memory.empty();
    let limit = workspace_limit();
    let ws = gpu.scratch(limit.max(1))?;
    let (mut count, h) = (0i32, libs.dnn);
    let wsp = ws.ptr as *mut c_void;
    let (x, w, y) = (ops.x as *mut c_void, ops.w as *mut c_void, ops.y as *mut c_void);
    let math = key.math();
    let fma = math == sys::cudnnMathType_t::CUDNN_FMA_MATH;
    // Without TF32, an f32 algorithm never runs on tensor cores, whatever Find reports.
    let usable = |m| {
        use sys::cudnnMathType_t as M;
        !fma || !matches!(m, M::CUDNN_TENSOR_OP_MATH | M::CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
    };
    let pick = |rows: Vec<(Algo, sys::cudnnStatus_t, usize, sys::cudnnMathType_t)>| {
        rows.into_iter()
            .find(|&(_, s, mem, m)| s == sys::cudnnStatus_t::CUDNN_STATUS_SUCCESS && mem <= limit && usable(m))
            .map(|(algo, _, workspace, m)| Choice { algo, workspace, math: if fma { math } else { m } })
            .ok_or_else(|| Error(format!("cudnn: no {d:?} algorithm runs within a {} MiB workspace", limit >> 20)))
    };
    // SAFETY: descriptors describe the operand buffers, which are live blocks of the right
    // sizes; the result arrays hold N entries and cuDNN writes `count` ≤ N of them.
    unsafe {
        // Another direction's run left its math type on the shared descriptor: reset it.
        dnn("math type", sys::cudnnSetConvolutionMathType(p.conv, math))?;
        match d {
            Direction::Forward => {
                let mut r: [sys::cudnnConvolutionFwdAlgoPerf_t; N] = std::mem::zeroed();
                dnn(
                    "find forward algorithm",
                    sys::cudnnFindConvolutionForwardAlgorithmEx(
                        h,
                        p.x,
                        x,
                        p.w,
                        w,
                        p.conv,
                        p.y,
                        y,
                        N as i32,
                        &mut count,
                        r.as_mut_ptr(),
                        wsp,
                        limit,
                    ),
                )?;
                pick(measured!(r, count, Algo::Forward))
            }
            Direction::BackwardData => {
                let mut r: [sys::cudnnConvolutionBwdDataAlgoPerf_t; N] = std::mem::zeroed();
                dnn(
                    "find backward-data algorithm",
                    sys::cudnnFindConvolutionBackwardDataAlgorithmEx(
                        h,
                        p.w,
                        w,
                        p.y,
                        y,
                        p.conv,
                        p.x,
                        x,
                        N as i32,
                        &mut count,
                        r.as_mut_ptr(),
                        wsp,
                        limit,
                    ),
                )?;
                pick(measured!(r, count, Algo::BackwardData))
            }
            Direction::BackwardFilter => {
                let mut r: [sys::cudnnConvolutionBwdFilterAlgoPerf_t; N] = std::mem::zeroed();
                dnn(
                    "find backward-filter algorithm",
                    sys::cudnnFindConvolutionBackwardFilterAlgorithmEx(
                        h,
                        p.x,
                        x,
                        p.y,
                        y,
                        p.conv,
                        p.w,
                        w,
                        N as i32,
                        &mut count,
                        r.as_mut_ptr(),
                        wsp,
                        limit,
                    ),
                )?;
                pick(measured!(r, count, Algo::BackwardFilter))
            }
        }
    }
}

/// Runs direction `d` of the convolution `key` whose output has shape `y`: forward writes
/// `ops.y`, backward-data writes `ops.x`, backward-filter writes `ops.w` (all overwritten).
pub fn run(gpu: &Gpu, key: PlanKey, y: [usize; 4], d: Direction, ops: &Operands) -> Result<()> {
    if gpu.is_emulated() {
        return crate::emulated::conv(key, y, d, ops);
    }
    let mut libs = gpu.libs()?;
    if let std::collections::hash_map::Entry::Vacant(e) = libs.plans.entry(key) {
        e.insert(Plan::new(&key, y)?);
    }
    let slot = d as usize;
    let chosen = libs.plans[&key].chosen[slot];
    let c = match chosen {
        Some(c) => c,
        None => {
            let c = choose(gpu, &libs, &key, &libs.plans[&key], d, ops)?;
            libs.plans.get_mut(&key).expect("inserted above").chosen[slot] = Some(c);
            c
        }
    };
    let p = &libs.plans[&key];
    let ws = gpu.block(c.workspace.max(1))?;
    let (alpha, beta) = (1f32, 0f32);
    let (a, b) = (&alpha as *const f32 as *const c_void, &beta as *const f32 as *const c_void);
    let (x, w, yp, wsp) = (ops.x as *mut c_void, ops.w as *mut c_void, ops.y as *mut c_void, ws.ptr as *mut c_void);
    // SAFETY: as in `choose`; the algorithm and math type are the ones measured for these
    // descriptors, and the workspace block is at least the size it asked for.
    unsafe {
        dnn("math type", sys::cudnnSetConvolutionMathType(p.conv, c.math))?;
        match c.algo {
            Algo::Forward(algo) => dnn(
                "forward",
                sys::cudnnConvolutionForward(libs.dnn, a, p.x, x, p.w, w, p.conv, algo, wsp, c.workspace, b, p.y, yp),
            ),
            Algo::BackwardData(algo) => dnn(
                "backward data",
                sys::cudnnConvolutionBackwardData(
                    libs.dnn,
                    a,
                    p.w,
                    w,
                    p.y,
                    yp,
                    p.conv,
                    algo,
                    wsp,
                    c.workspace,
                    b,
                    p.x,
                    x,
                ),
            ),
            Algo::BackwardFilter(algo) => dnn(
                "backward filter",
                sys::cudnnConvolutionBackwardFilter(
                    libs.dnn,
                    a,
                    p.x,
                    x,
                    p.y,
                    yp,
                    p.conv,
                    algo,
                    wsp,
                    c.workspace,
                    b,
                    p.w,
                    w,
                ),
            ),
        }
    }
}
