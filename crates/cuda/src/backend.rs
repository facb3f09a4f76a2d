//! The GPU twin of maskfr-core's CPU backend: the same checks (core's `backend::checks`),
//! then cuDNN, cuBLAS or an NVRTC kernel on the GPU's one stream. Elementwise ops and
//! reductions compute in f32 with f64 sums like the CPU; conv and matmul also take f16/bf16.

use crate::conv::{self, Direction, Operands, PlanKey};
use crate::gemm::{gemm, Operand};
use crate::gpu::{addr, elementwise, per_row, Arg, Gpu};
use maskfr_core::backend::checks::*;
use maskfr_core::kernels::conv::ConvGeom;
use maskfr_core::{
    ensure, Backend, BnOut, ConvParams, DType, DeviceMemory, Error, Margin, Result, ScaleRule, SgdHyper, Tensor,
};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use Arg::{Ptr, F32, F64, I32, I64, U64};

pub struct CudaBackend {
    gpu: Gpu,
}

/// A failure of the GPU plumbing (allocator, launch, library), prefixed with the `op` that met it.
trait At<T> {
    fn at(self, op: &str) -> Result<T>;
}

impl<T> At<T> for Result<T> {
    fn at(self, op: &str) -> Result<T> {
        self.map_err(|e| Error::new(op, e))
    }
}

type Opened = Result<&'static CudaBackend>;

/// GPU `ordinal`'s backend, opened on first use (a failure is kept and told again).
fn opened(ordinal: usize) -> Opened {
    static OPEN: OnceLock<Mutex<HashMap<usize, Opened>>> = OnceLock::new();
    let mut open = OPEN.get_or_init(|| Mutex::new(HashMap::new())).lock().unwrap_or_else(|p| p.into_inner());
    open.entry(ordinal)
        .or_insert_with(|| Gpu::open(ordinal).map(|gpu| &*Box::leak(Box::new(CudaBackend { gpu }))))
        .clone()
}

/// The backend of GPU `ordinal` (what maskfr-core dispatches `cuda:N` tensors to).
pub fn cuda_backend(ordinal: usize) -> Result<&'static dyn Backend> {
    opened(ordinal).map(|b| b as &'static dyn Backend)
}

/// GPU `ordinal` itself (its stream and allocator), for the NCCL communicator.
pub fn gpu(ordinal: usize) -> crate::Result<&'static Gpu> {
    opened(ordinal).map(|b| &b.gpu)
}

fn f(op: &str, t: &Tensor) -> Result<u64> {
    addr(op, t, DType::F32)
}

fn len(t: &Tensor) -> Arg {
    I64(t.numel() as i64)
}

impl CudaBackend {
    fn out(&self, op: &str, shape: &[usize]) -> Result<(Tensor, u64)> {
        self.gpu.empty(shape, DType::F32).at(op)
    }

    fn run(
        &self,
        op: &str,
        name: &'static str,
        module: &'static str,
        cfg: cudarc::driver::LaunchConfig,
        args: &[Arg],
    ) -> Result<()> {
        self.gpu.launch(module, name, cfg, args).at(op)
    }

    /// `name(x…, y, n)` over every element into a new tensor shaped like `like`.
    fn map(
        &self,
        op: &str,
        module: &'static str,
        name: &'static str,
        like: &Tensor,
        inputs: &[Arg],
        tail: &[Arg],
    ) -> Result<Tensor> {
        let (y, yp) = self.out(op, like.shape())?;
        let args: Vec<Arg> = inputs.iter().copied().chain([Ptr(yp)]).chain(tail.iter().copied()).collect();
        self.run(op, name, module, elementwise(like.numel()), &args)?;
        Ok(y)
    }

    /// Σx (or Σx²) as a 0-d tensor: fixed-size slices per block, then one block over the
    /// partials: the same order (so the same result) on every run.
    fn total(&self, op: &str, x: &Tensor, squares: bool) -> Result<Tensor> {
        let n = x.numel();
        let blocks = n.div_ceil(4096).clamp(1, 1024);
        let per_block = n.div_ceil(blocks).max(1);
        let partials = self.gpu.block(blocks * 8).at(op)?;
        let cfg = cudarc::driver::LaunchConfig { grid_dim: (blocks as u32, 1, 1), ..per_row(1) };
        let args = [Ptr(f(op, x)?), Ptr(partials.ptr), len(x), I64(per_block as i64), I32(i32::from(squares))];
        self.run(op, "sum_partials_f32", "reduce", cfg, &args)?;
        let (y, yp) = self.out(op, &[])?;
        self.run(op, "sum_finish", "reduce", per_row(1), &[Ptr(partials.ptr), I32(blocks as i32), Ptr(yp)])?;
        Ok(y)
    }

    /// Direction `d` into `out` (at `out_ptr`) from `inputs`. cuDNN refuses zero sizes: an
    /// empty output is left as it is and an empty input gives zeros (an empty sum), as on the CPU.
    fn conv(
        &self,
        key: PlanKey,
        y: [usize; 4],
        d: Direction,
        ops: Operands,
        out: (&Tensor, u64),
        inputs: [&Tensor; 2],
    ) -> Result<()> {
        let (t, ptr) = out;
        if t.numel() == 0 {
            return Ok(());
        }
        if inputs.iter().any(|i| i.numel() == 0) {
            return self.gpu.memset_zero(ptr, t.numel() * t.dtype().size()).at("conv2d");
        }
        conv::run(&self.gpu, key, y, d, &ops).at("conv2d")
    }

    /// A copy of `t` in `dtype` (f16 and bf16 go through f32).
    fn convert(&self, t: &Tensor, dtype: DType) -> Result<Tensor> {
        let op = "cast";
        let src = addr(op, t, t.dtype())?;
        let (y, yp) = self.gpu.empty(t.shape(), dtype).at(op)?;
        let kernel = match (t.dtype(), dtype) {
            (a, b) if a == b => {
                self.gpu.copy_device(yp, src, t.numel() * a.size()).at(op)?;
                return Ok(y);
            }
            (DType::F32, DType::F16) => "f32_to_f16",
            (DType::F32, DType::BF16) => "f32_to_bf16",
            (DType::F16, DType::F32) => "f16_to_f32",
            (DType::BF16, DType::F32) => "bf16_to_f32",
            (_, _) => return self.convert(&self.convert(t, DType::F32)?, dtype),
        };
        self.run(op, kernel, "elementwise", elementwise(t.numel()), &[Ptr(src), Ptr(yp), len(t)])?;
        Ok(y)
    }
}

impl Backend for CudaBackend {
    fn upload(&self, host: &Tensor) -> Result<Tensor> {
        let op = "to";
        if host.dtype() != DType::F32 {
            return self.convert(&self.upload(&host.cast(DType::F32))?, host.dtype());
        }
        let (y, yp) = self.out(op, host.shape())?;
        let v = host.f32s(op)?;
        // SAFETY: plain f32s viewed as their bytes.
        let bytes = unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, v.len() * 4) };
        self.gpu.write(yp, bytes).at(op)?;
        Ok(y)
    }

    fn download(&self, t: &Tensor) -> Result<Tensor> {
        let op = "to";
        if t.dtype() != DType::F32 {
            return Ok(self.download(&self.convert(t, DType::F32)?)?.cast(t.dtype()));
        }
        let mut v = vec![0f32; t.numel()];
        // SAFETY: plain f32s viewed as their bytes.
        let bytes = unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, v.len() * 4) };
        self.gpu.read(bytes, f(op, t)?).at(op)?;
        Tensor::from_vec(v, t.shape())
    }

    fn cast(&self, t: &Tensor, dtype: DType) -> Result<Tensor> {
        self.convert(t, dtype)
    }

    fn synchronize(&self) -> Result<()> {
        self.gpu.synchronize().at("synchronize")
    }

    fn device_memory(&self) -> Option<DeviceMemory> {
        let s = self.gpu.memory.stats();
        Some(DeviceMemory { live_bytes: s.live, peak_bytes: s.peak, cached_bytes: s.cached })
    }

    fn empty_cache(&self) {
        self.gpu.memory.empty();
    }

    fn reset_peak(&self) {
        self.gpu.memory.reset_peak();
    }

    fn full(&self, shape: &[usize], value: f32) -> Result<Tensor> {
        let (y, yp) = self.out("full", shape)?;
        self.run("full", "fill_f32", "elementwise", elementwise(y.numel()), &[Ptr(yp), F32(value), len(&y)])?;
        Ok(y)
    }

    fn randn(&self, shape: &[usize], mean: f64, std: f64, seed: u64, offset: u64) -> Result<Tensor> {
        let (y, yp) = self.out("randn", shape)?;
        let args = [Ptr(yp), U64(seed), U64(offset), F64(mean), F64(std), len(&y)];
        self.run("randn", "randn_f32", "random", elementwise(y.numel()), &args)?;
        Ok(y)
    }

    fn rand_uniform(&self, shape: &[usize], lo: f64, hi: f64, seed: u64) -> Result<Tensor> {
        let (y, yp) = self.out("rand_uniform", shape)?;
        let args = [Ptr(yp), U64(seed), F64(lo), F64(hi), len(&y)];
        self.run("rand_uniform", "uniform_f32", "random", elementwise(y.numel()), &args)?;
        Ok(y)
    }

    fn copy_(&self, dst: &Tensor, src: &Tensor) -> Result<()> {
        let op = "copy_";
        same_shape(op, dst, src)?;
        if dst.shares_storage(src) {
            return Ok(());
        }
        let (d, s) = (addr(op, dst, src.dtype())?, addr(op, src, src.dtype())?);
        self.gpu.copy_device(d, s, src.numel() * src.dtype().size()).at(op)
    }

    fn conv2d(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: ConvParams) -> Result<Tensor> {
        let op = "conv2d";
        let g = ConvGeom::new(x.shape(), w.shape(), p.stride, p.pad)?;
        let dtype = product_dtype(op, &[x, w], bias)?;
        let (y, yp) = self.gpu.empty(&g.out_shape(), dtype).at(op)?;
        let key = PlanKey::new(x.shape(), w.shape(), p, dtype);
        let ops = Operands { x: addr(op, x, dtype)?, w: addr(op, w, dtype)?, y: yp };
        self.conv(key, g.out_shape(), Direction::Forward, ops, (&y, yp), [x, w])?;
        if let Some(b) = bias {
            vector(op, "bias", b, g.o)?;
            let (yf, bp) = (f(op, &y)?, f(op, b)?);
            let s = (g.out_shape()[2] * g.out_shape()[3]) as i64;
            let args = [Ptr(yf), Ptr(bp), Ptr(yf), len(&y), I32(g.o as i32), I64(s)];
            self.run(op, "add_channel_f32", "elementwise", elementwise(y.numel()), &args)?;
        }
        Ok(y)
    }

    fn conv2d_backward_input(&self, gy: &Tensor, w: &Tensor, x_shape: &[usize], p: ConvParams) -> Result<Tensor> {
        let op = "conv2d_backward";
        let g = backward_geom(gy, x_shape, w.shape(), p)?;
        let dtype = product_dtype(op, &[gy, w], None)?;
        let (gx, gxp) = self.gpu.empty(x_shape, dtype).at(op)?;
        let key = PlanKey::new(x_shape, w.shape(), p, dtype);
        let ops = Operands { x: gxp, w: addr(op, w, dtype)?, y: addr(op, gy, dtype)? };
        self.conv(key, g.out_shape(), Direction::BackwardData, ops, (&gx, gxp), [gy, w])?;
        Ok(gx)
    }

    fn conv2d_backward_weight(&self, gy: &Tensor, x: &Tensor, w_shape: &[usize], p: ConvParams) -> Result<Tensor> {
        let op = "conv2d_backward";
        let g = backward_geom(gy, x.shape(), w_shape, p)?;
        let dtype = product_dtype(op, &[gy, x], None)?;
        let (gw, gwp) = self.gpu.empty(w_shape, dtype).at(op)?;
        let key = PlanKey::new(x.shape(), w_shape, p, dtype);
        let ops = Operands { x: addr(op, x, dtype)?, w: gwp, y: addr(op, gy, dtype)? };
        self.conv(key, g.out_shape(), Direction::BackwardFilter, ops, (&gw, gwp), [gy, x])?;
        Ok(gw)
    }

    fn batch_norm(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        training: bool,
        momentum: f64,
        eps: f64,
    ) -> Result<BnOut> {
        let op = "batch_norm";
        let g = batch_norm_geom(x, weight, bias, running_mean, running_var, training)?;
        let (c, ci, s) = (g.c, I32(g.c as i32), I64(g.s as i64));
        let (rm, rv) = (f(op, running_mean)?, f(op, running_var)?);
        let (mean, mp) = self.out(op, &[c])?;
        let (invstd, ip) = self.out(op, &[c])?;
        let small = elementwise(c);
        if training {
            let (_var, vp) = self.out(op, &[c])?;
            self.run(
                op,
                "bn_stats_f32",
                "batchnorm",
                per_row(c),
                &[Ptr(f(op, x)?), Ptr(mp), Ptr(vp), I32(g.n as i32), ci, s],
            )?;
            let m = F64((g.n * g.s) as f64);
            let args = [Ptr(mp), Ptr(vp), Ptr(ip), Ptr(rm), Ptr(rv), ci, F64(momentum), F64(eps), m];
            self.run(op, "bn_finish_train_f32", "batchnorm", small, &args)?;
        } else {
            self.gpu.copy_device(mp, rm, c * 4).at(op)?;
            self.run(op, "bn_invstd_f32", "batchnorm", small, &[Ptr(rv), Ptr(ip), ci, F64(eps)])?;
        }
        let inputs = [Ptr(f(op, x)?), Ptr(mp), Ptr(ip), Ptr(f(op, weight)?), Ptr(f(op, bias)?)];
        let y = self.map(op, "batchnorm", "bn_apply_f32", x, &inputs, &[len(x), ci, s])?;
        Ok(BnOut { y, mean, invstd })
    }

    fn batch_norm_backward(
        &self,
        gy: &Tensor,
        x: &Tensor,
        weight: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
        training: bool,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let op = "batch_norm_backward";
        let g = batch_norm_backward_geom(gy, x, weight, mean, invstd)?;
        let (ci, s) = (I32(g.c as i32), I64(g.s as i64));
        let (gyp, xp, mp, ip) = (f(op, gy)?, f(op, x)?, f(op, mean)?, f(op, invstd)?);
        let (gw, gwp) = self.out(op, &[g.c])?;
        let (gb, gbp) = self.out(op, &[g.c])?;
        let args = [Ptr(gyp), Ptr(xp), Ptr(mp), Ptr(ip), Ptr(gwp), Ptr(gbp), I32(g.n as i32), ci, s];
        self.run(op, "bn_backward_sums_f32", "batchnorm", per_row(g.c), &args)?;
        let inputs = [Ptr(gyp), Ptr(xp), Ptr(mp), Ptr(ip), Ptr(f(op, weight)?), Ptr(gwp), Ptr(gbp)];
        let gx = self.map(op, "batchnorm", "bn_backward_dx_f32", x, &inputs, &[len(x), ci, s, I32(training as i32)])?;
        Ok((gx, gw, gb))
    }

    fn prelu(&self, x: &Tensor, alpha: &Tensor) -> Result<Tensor> {
        let (_, c, s) = ncs("prelu", x, alpha.numel())?;
        let inputs = [Ptr(f("prelu", x)?), Ptr(f("prelu", alpha)?)];
        self.map("prelu", "prelu", "prelu_f32", x, &inputs, &[len(x), I32(c as i32), I64(s as i64)])
    }

    fn prelu_backward(&self, gy: &Tensor, x: &Tensor, alpha: &Tensor) -> Result<(Tensor, Tensor)> {
        let op = "prelu_backward";
        let (n, c, s) = ncs(op, x, alpha.numel())?;
        same_shape(op, gy, x)?;
        let (gyp, xp, ap) = (f(op, gy)?, f(op, x)?, f(op, alpha)?);
        let (ci, si) = (I32(c as i32), I64(s as i64));
        let gx = self.map(op, "prelu", "prelu_backward_dx_f32", x, &[Ptr(gyp), Ptr(xp), Ptr(ap)], &[len(x), ci, si])?;
        let (ga, gap) = self.out(op, alpha.shape())?;
        self.run(
            op,
            "prelu_backward_alpha_f32",
            "prelu",
            per_row(c),
            &[Ptr(gyp), Ptr(xp), Ptr(gap), I32(n as i32), ci, si],
        )?;
        Ok((gx, ga))
    }

    fn dropout(&self, x: &Tensor, p: f64, seed: u64) -> Result<Tensor> {
        check_prob("dropout", p)?;
        let inputs = [Ptr(f("dropout", x)?)];
        self.map("dropout", "random", "dropout_f32", x, &inputs, &[U64(seed), F64(p), len(x)])
    }

    fn matmul(&self, a: &Tensor, b: &Tensor, trans_a: bool, trans_b: bool) -> Result<Tensor> {
        let op = "matmul";
        let (m, _, n) = matmul_dims(a, b, trans_a, trans_b)?;
        let dtype = product_dtype(op, &[a, b], None)?;
        let operand = |t: &Tensor, trans| -> Result<Operand> {
            Ok(Operand { ptr: addr(op, t, dtype)?, rows: t.shape()[0], cols: t.shape()[1], trans })
        };
        let (c, cp) = self.gpu.empty(&[m, n], dtype).at(op)?;
        gemm(&self.gpu, dtype, operand(a, trans_a)?, operand(b, trans_b)?, cp, 0.0).at(op)?;
        Ok(c)
    }

    fn linear(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let op = "linear";
        let (_, _, o) = linear_dims(x, w, bias)?;
        product_dtype(op, &[x, w], bias)?;
        let y = self.matmul(x, w, false, true)?;
        if let Some(b) = bias {
            let yp = f(op, &y)?;
            let args = [Ptr(yp), Ptr(f(op, b)?), Ptr(yp), len(&y), I32(o as i32), I64(1)];
            self.run(op, "add_channel_f32", "elementwise", elementwise(y.numel()), &args)?;
        }
        Ok(y)
    }

    fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        same_shape("add", a, b)?;
        self.map("add", "elementwise", "add_f32", a, &[Ptr(f("add", a)?), Ptr(f("add", b)?)], &[len(a)])
    }

    fn mul(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        same_shape("mul", a, b)?;
        self.map("mul", "elementwise", "mul_f32", a, &[Ptr(f("mul", a)?), Ptr(f("mul", b)?)], &[len(a)])
    }

    fn scale(&self, a: &Tensor, s: f64) -> Result<Tensor> {
        self.map("scale", "elementwise", "scale_f32", a, &[Ptr(f("scale", a)?), F32(s as f32)], &[len(a)])
    }

    fn scale_by(&self, a: &Tensor, s: &Tensor) -> Result<Tensor> {
        let op = "scale_by";
        single(op, s)?;
        self.map(op, "elementwise", "scale_by_f32", a, &[Ptr(f(op, a)?), Ptr(f(op, s)?)], &[len(a)])
    }

    fn add_channel(&self, x: &Tensor, v: &Tensor) -> Result<Tensor> {
        let op = "add_channel";
        let (_, c, s) = ncs(op, x, v.numel())?;
        vector(op, "the per-channel values", v, c)?;
        let inputs = [Ptr(f(op, x)?), Ptr(f(op, v)?)];
        self.map(op, "elementwise", "add_channel_f32", x, &inputs, &[len(x), I32(c as i32), I64(s as i64)])
    }

    fn add_scaled_(&self, acc: &Tensor, a: &Tensor, s: f64) -> Result<()> {
        let op = "add_scaled_";
        same_shape(op, acc, a)?;
        ensure!(!acc.shares_storage(a), op, "the accumulator and the addend share storage");
        let args = [Ptr(f(op, acc)?), Ptr(f(op, a)?), F32(s as f32), len(a)];
        self.run(op, "add_scaled_f32", "elementwise", elementwise(a.numel()), &args)
    }

    fn index_rows(&self, x: &Tensor, idx: &[i32]) -> Result<Tensor> {
        let op = "index_rows";
        let (_, shape, width) = index_rows_args(x, idx)?;
        let ix = self.gpu.upload_i32(idx).at(op)?;
        let (y, yp) = self.out(op, &shape)?;
        let args = [Ptr(f(op, x)?), Ptr(ix.ptr), Ptr(yp), I64(width as i64), len(&y)];
        self.run(op, "index_rows_f32", "rows", elementwise(y.numel()), &args)?;
        Ok(y)
    }

    fn scatter_rows(&self, x: &Tensor, idx: &[i32], rows: usize) -> Result<Tensor> {
        let op = "scatter_rows";
        let (_, shape, width) = scatter_rows_args(x, idx, rows)?;
        let ix = self.gpu.upload_i32(idx).at(op)?;
        let (y, yp) = self.gpu.zeros(&shape).at(op)?;
        let args = [Ptr(f(op, x)?), Ptr(ix.ptr), Ptr(yp), I64(width as i64), len(x)];
        self.run(op, "scatter_rows_f32", "rows", elementwise(x.numel()), &args)?;
        Ok(y)
    }

    fn sum(&self, x: &Tensor) -> Result<Tensor> {
        self.total("sum", x, false)
    }

    fn sum_squares(&self, x: &Tensor) -> Result<Tensor> {
        self.total("sum_squares", x, true)
    }

    fn expand_scalar(&self, g: &Tensor, shape: &[usize], scale: f64) -> Result<Tensor> {
        let op = "expand_scalar";
        single(op, g)?;
        let (y, yp) = self.out(op, shape)?;
        self.run(
            op,
            "expand_scalar_f32",
            "elementwise",
            elementwise(y.numel()),
            &[Ptr(f(op, g)?), F64(scale), Ptr(yp), len(&y)],
        )?;
        Ok(y)
    }

    fn channel_sum(&self, x: &Tensor) -> Result<Tensor> {
        let op = "channel_sum";
        let (n, c, s) = channel_dims(op, x)?;
        let (y, yp) = self.out(op, &[c])?;
        self.run(
            op,
            "channel_sum_f32",
            "reduce",
            per_row(c),
            &[Ptr(f(op, x)?), Ptr(yp), I32(n as i32), I32(c as i32), I64(s as i64)],
        )?;
        Ok(y)
    }

    fn l2_normalize(&self, x: &Tensor, eps: f64) -> Result<Tensor> {
        let op = "l2_normalize";
        let (r, d) = rows(op, x)?;
        let (y, yp) = self.out(op, x.shape())?;
        self.run(
            op,
            "l2_normalize_f32",
            "l2norm",
            per_row(r),
            &[Ptr(f(op, x)?), Ptr(yp), I32(d as i32), F32(eps as f32)],
        )?;
        Ok(y)
    }

    fn l2_normalize_backward(&self, gy: &Tensor, x: &Tensor, eps: f64) -> Result<Tensor> {
        let op = "l2_normalize_backward";
        let (r, d) = rows(op, x)?;
        same_shape(op, gy, x)?;
        let (gx, gxp) = self.out(op, x.shape())?;
        let args = [Ptr(f(op, gy)?), Ptr(f(op, x)?), Ptr(gxp), I32(d as i32), F32(eps as f32)];
        self.run(op, "l2_normalize_backward_f32", "l2norm", per_row(r), &args)?;
        Ok(gx)
    }

    fn log_softmax(&self, x: &Tensor) -> Result<Tensor> {
        let op = "log_softmax";
        let (r, k) = rows(op, x)?;
        let (y, yp) = self.out(op, x.shape())?;
        self.run(op, "log_softmax_f32", "loss", per_row(r), &[Ptr(f(op, x)?), Ptr(yp), I32(k as i32)])?;
        Ok(y)
    }

    fn log_softmax_backward(&self, gy: &Tensor, y: &Tensor) -> Result<Tensor> {
        let op = "log_softmax_backward";
        let (r, k) = rows(op, y)?;
        same_shape(op, gy, y)?;
        let (gx, gxp) = self.out(op, y.shape())?;
        self.run(
            op,
            "log_softmax_backward_f32",
            "loss",
            per_row(r),
            &[Ptr(f(op, gy)?), Ptr(f(op, y)?), Ptr(gxp), I32(k as i32)],
        )?;
        Ok(gx)
    }

    fn cross_entropy(&self, logits: &Tensor, labels: &[i32]) -> Result<(Tensor, Tensor)> {
        let op = "cross_entropy";
        let (r, k, _) = labelled_rows(op, logits, labels)?;
        let logp = self.log_softmax(logits)?;
        let lab = self.gpu.upload_i32(labels).at(op)?;
        let (loss, lp) = self.out(op, &[])?;
        self.run(
            op,
            "nll_mean_f32",
            "loss",
            per_row(1),
            &[Ptr(f(op, &logp)?), Ptr(lab.ptr), Ptr(lp), I32(r as i32), I32(k as i32)],
        )?;
        Ok((loss, logp))
    }

    fn cross_entropy_backward(&self, logp: &Tensor, labels: &[i32], g: &Tensor) -> Result<Tensor> {
        let op = "cross_entropy_backward";
        let (r, k, _) = labelled_rows(op, logp, labels)?;
        single(op, g)?;
        let lab = self.gpu.upload_i32(labels).at(op)?;
        let inputs = [Ptr(f(op, logp)?), Ptr(lab.ptr), Ptr(f(op, g)?)];
        self.map(op, "loss", "cross_entropy_backward_f32", logp, &inputs, &[I32(r as i32), I32(k as i32)])
    }

    fn margin_logits(&self, cos: &Tensor, labels: &[i32], m: Margin) -> Result<Tensor> {
        let op = "margin_logits";
        let (r, k, _) = labelled_rows(op, cos, labels)?;
        let lab = self.gpu.upload_i32(labels).at(op)?;
        let tail = [I32(r as i32), I32(k as i32), F64(m.s), F64(m.m_arc), F64(m.m_cos)];
        self.map(op, "margin", "margin_logits_f32", cos, &[Ptr(f(op, cos)?), Ptr(lab.ptr)], &tail)
    }

    fn margin_logits_backward(&self, gy: &Tensor, cos: &Tensor, labels: &[i32], m: Margin) -> Result<Tensor> {
        let op = "margin_logits_backward";
        same_shape(op, gy, cos)?;
        let (r, k, _) = labelled_rows(op, cos, labels)?;
        let lab = self.gpu.upload_i32(labels).at(op)?;
        let inputs = [Ptr(f(op, gy)?), Ptr(f(op, cos)?), Ptr(lab.ptr)];
        self.map(
            op,
            "margin",
            "margin_logits_backward_f32",
            cos,
            &inputs,
            &[I32(r as i32), I32(k as i32), F64(m.s), F64(m.m_arc)],
        )
    }

    fn margin_chunk_stats(
        &self,
        cos: &Tensor,
        target: &[i32],
        j0: usize,
        m: Margin,
        stats: [&Tensor; 3],
    ) -> Result<()> {
        let op = "margin_chunk_stats";
        let (b, w) = margin_chunk_args(op, cos, target, &stats)?;
        let t = self.gpu.upload_i32(target).at(op)?;
        let args = [
            Ptr(f(op, cos)?),
            Ptr(t.ptr),
            I32(w as i32),
            I32(j0 as i32),
            F64(m.s),
            F64(m.m_arc),
            F64(m.m_cos),
            Ptr(f(op, stats[0])?),
            Ptr(f(op, stats[1])?),
            Ptr(f(op, stats[2])?),
        ];
        self.run(op, "margin_chunk_stats", "margin", per_row(b), &args)
    }

    fn margin_softmax_total(&self, max: &Tensor, sum: &Tensor, gmax: &Tensor) -> Result<Tensor> {
        let op = "margin_softmax_total";
        margin_rows(op, &[max, sum, gmax])?;
        let inputs = [Ptr(f(op, max)?), Ptr(f(op, sum)?), Ptr(f(op, gmax)?)];
        self.map(op, "margin", "margin_softmax_total", max, &inputs, &[len(max)])
    }

    fn margin_softmax_loss(&self, gmax: &Tensor, gsum: &Tensor, tlogit: &Tensor) -> Result<Tensor> {
        let op = "margin_softmax_loss";
        let b = margin_rows(op, &[gmax, gsum, tlogit])?;
        let (y, yp) = self.out(op, &[])?;
        let args = [Ptr(f(op, gmax)?), Ptr(f(op, gsum)?), Ptr(f(op, tlogit)?), I32(b as i32), Ptr(yp)];
        self.run(op, "margin_softmax_loss", "margin", per_row(1), &args)?;
        Ok(y)
    }

    fn margin_chunk_grad(
        &self,
        cos: &Tensor,
        target: &[i32],
        j0: usize,
        m: Margin,
        global: [&Tensor; 2],
    ) -> Result<Tensor> {
        let op = "margin_chunk_grad";
        let (b, w) = margin_chunk_args(op, cos, target, &global)?;
        let t = self.gpu.upload_i32(target).at(op)?;
        let (g, gp) = self.out(op, cos.shape())?;
        let args = [
            Ptr(f(op, cos)?),
            Ptr(t.ptr),
            I32(w as i32),
            I32(j0 as i32),
            I32(b as i32),
            F64(m.s),
            F64(m.m_arc),
            F64(m.m_cos),
            Ptr(f(op, global[0])?),
            Ptr(f(op, global[1])?),
            Ptr(gp),
        ];
        self.run(op, "margin_chunk_grad", "margin", elementwise(cos.numel()), &args)?;
        Ok(g)
    }

    fn copy_rows_(&self, dst: &Tensor, idx: &[i32], src: &Tensor) -> Result<()> {
        let op = "copy_rows";
        let (_, width) = copy_rows_args(dst, idx, src)?;
        let ix = self.gpu.upload_i32(idx).at(op)?;
        let args = [Ptr(f(op, src)?), Ptr(ix.ptr), Ptr(f(op, dst)?), I64(width as i64), len(src)];
        self.run(op, "copy_rows_f32", "rows", elementwise(src.numel()), &args)
    }

    fn sgd_step_all(&self, triples: &[[&Tensor; 3]], h: SgdHyper, gate: Option<&Tensor>) -> Result<()> {
        let op = "sgd_step";
        let gate = match gate {
            Some(g) => {
                single(op, g)?;
                f(op, g)?
            }
            None => 0, // a null pointer: no gate
        };
        if triples.is_empty() {
            return Ok(());
        }
        // Three pointer tables and the element offsets, uploaded as one block.
        let mut table = Vec::with_capacity(triples.len() * 4 + 1);
        let mut offsets = vec![0u64];
        for [p, g, b] in triples {
            sgd_args(p, g, b)?;
            offsets.push(offsets.last().copied().unwrap_or(0) + p.numel() as u64);
        }
        for k in 0..3 {
            for t in triples {
                table.push(f(op, t[k])?);
            }
        }
        table.extend(&offsets);
        let bytes: Vec<u8> = table.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let block = self.gpu.block(bytes.len()).at(op)?;
        self.gpu.write(block.ptr, &bytes).at(op)?;
        let t = triples.len() as u64;
        let at = |i: u64| Ptr(block.ptr + i * t * 8);
        let total = *offsets.last().unwrap_or(&0) as usize;
        let (lr, momentum, wd) = (h.lr as f32, h.momentum as f32, h.weight_decay as f32);
        let args = [at(0), at(1), at(2), at(3), I32(t as i32), F32(lr), F32(momentum), F32(wd), Ptr(gate)];
        self.run(op, "sgd_multi_f32", "sgd", elementwise(total), &args)
    }

    fn clip_gate(&self, sumsq: &Tensor, scale: Option<&Tensor>, max_norm: f64) -> Result<Tensor> {
        let op = "clip_gate";
        single(op, sumsq)?;
        let scale = match scale {
            Some(s) => {
                single(op, s)?;
                f(op, s)?
            }
            None => 0, // a null pointer: no loss scale
        };
        let (y, yp) = self.out(op, &[])?;
        self.run(op, "clip_gate", "sgd", per_row(1), &[Ptr(f(op, sumsq)?), Ptr(scale), F64(max_norm), Ptr(yp)])?;
        Ok(y)
    }

    fn loss_scale_update(&self, gate: &Tensor, state: [&Tensor; 3], rule: ScaleRule) -> Result<()> {
        let op = "loss_scale_update";
        [gate, state[0], state[1], state[2]].iter().try_for_each(|t| single(op, t))?;
        let args = [
            Ptr(f(op, gate)?),
            Ptr(f(op, state[0])?),
            Ptr(f(op, state[1])?),
            Ptr(f(op, state[2])?),
            F64(rule.growth),
            F64(rule.backoff),
            I32(rule.interval as i32),
        ];
        self.run(op, "loss_scale_update", "sgd", per_row(1), &args)
    }
}
