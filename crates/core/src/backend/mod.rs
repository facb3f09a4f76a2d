//! What a device backend must do, and the one place a device picks its backend.
//! Every op takes and returns tensors on that backend's device; shapes are checked there.

pub mod checks;
mod cpu;

pub use crate::kernels::margin::Margin;
use crate::{DType, Device, Error, Result, Tensor};
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvParams {
    pub stride: [usize; 2],
    pub pad: [usize; 2],
}

/// A device backend's own memory accounting (host tensors are counted in [`crate::memory`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceMemory {
    pub live_bytes: u64,
    pub peak_bytes: u64,
    /// Freed blocks kept for reuse.
    pub cached_bytes: u64,
}

/// Batch-norm forward results: output plus the mean and 1/σ used, saved for the backward.
pub struct BnOut {
    pub y: Tensor,
    pub mean: Tensor,
    pub invstd: Tensor,
}

pub trait Backend: Sync {
    /// A host tensor copied onto this backend's device (same dtype).
    fn upload(&self, host: &Tensor) -> Result<Tensor>;
    /// One of this device's tensors copied into host memory (same dtype).
    fn download(&self, t: &Tensor) -> Result<Tensor>;
    /// A copy in another storage dtype on the same device.
    fn cast(&self, t: &Tensor, dtype: DType) -> Result<Tensor>;
    /// Waits for the device's queued work (for timings); the CPU has none.
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
    /// Device memory figures, where the backend manages memory of its own.
    fn device_memory(&self) -> Option<DeviceMemory> {
        None
    }
    /// Frees the blocks kept for reuse.
    fn empty_cache(&self) {}
    /// Restarts the device's peak from its live bytes.
    fn reset_peak(&self) {}

    fn full(&self, shape: &[usize], value: f32) -> Result<Tensor>;
    /// Elements `offset..` of the normal stream `seed`.
    fn randn(&self, shape: &[usize], mean: f64, std: f64, seed: u64, offset: u64) -> Result<Tensor>;
    fn rand_uniform(&self, shape: &[usize], lo: f64, hi: f64, seed: u64) -> Result<Tensor>;

    /// Copies `src`'s elements into `dst` in place (same shape).
    fn copy_(&self, dst: &Tensor, src: &Tensor) -> Result<()>;

    fn conv2d(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: ConvParams) -> Result<Tensor>;
    fn conv2d_backward_input(&self, gy: &Tensor, w: &Tensor, x_shape: &[usize], p: ConvParams) -> Result<Tensor>;
    fn conv2d_backward_weight(&self, gy: &Tensor, x: &Tensor, w_shape: &[usize], p: ConvParams) -> Result<Tensor>;

    /// Training mode normalises with batch statistics and updates the running ones in place;
    /// evaluation mode normalises with the running statistics.
    #[allow(clippy::too_many_arguments)]
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
    ) -> Result<BnOut>;
    /// Returns (gx, gweight, gbias).
    fn batch_norm_backward(
        &self,
        gy: &Tensor,
        x: &Tensor,
        weight: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
        training: bool,
    ) -> Result<(Tensor, Tensor, Tensor)>;

    fn prelu(&self, x: &Tensor, alpha: &Tensor) -> Result<Tensor>;
    /// Returns (gx, galpha).
    fn prelu_backward(&self, gy: &Tensor, x: &Tensor, alpha: &Tensor) -> Result<(Tensor, Tensor)>;
    /// `x·mask` with a mask drawn from `seed`; the backward is the same call on the gradient.
    fn dropout(&self, x: &Tensor, p: f64, seed: u64) -> Result<Tensor>;

    /// 2-d product with optional transposes of either operand.
    fn matmul(&self, a: &Tensor, b: &Tensor, trans_a: bool, trans_b: bool) -> Result<Tensor>;
    /// `x [B, I] · w [O, I]ᵀ + bias [O]`.
    fn linear(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor>;

    fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor>;
    fn mul(&self, a: &Tensor, b: &Tensor) -> Result<Tensor>;
    fn scale(&self, a: &Tensor, s: f64) -> Result<Tensor>;
    /// `a · s` with `s` a 0-d tensor on `a`'s device (a loss scale, a fused loss's upstream
    /// factor); a GPU reads it in the kernel, never on the host.
    fn scale_by(&self, a: &Tensor, s: &Tensor) -> Result<Tensor>;
    /// `x + v` with `v [C]` broadcast over every dimension but dimension 1.
    fn add_channel(&self, x: &Tensor, v: &Tensor) -> Result<Tensor>;
    /// `acc += a·s` in place.
    fn add_scaled_(&self, acc: &Tensor, a: &Tensor, s: f64) -> Result<()>;

    /// Rows `idx` of `x` along dimension 0.
    fn index_rows(&self, x: &Tensor, idx: &[i32]) -> Result<Tensor>;
    /// A tensor of `rows` rows, zero but for `x[i]` added at row `idx[i]`.
    fn scatter_rows(&self, x: &Tensor, idx: &[i32], rows: usize) -> Result<Tensor>;

    /// Sum of all elements, as a 0-d tensor.
    fn sum(&self, x: &Tensor) -> Result<Tensor>;
    /// Sum of the squares of all elements, as a 0-d tensor (gradient norms, no temporary).
    fn sum_squares(&self, x: &Tensor) -> Result<Tensor>;
    /// A tensor of `shape` filled with the 0-d `g` times `scale` (the backward of sum/mean).
    fn expand_scalar(&self, g: &Tensor, shape: &[usize], scale: f64) -> Result<Tensor>;
    /// Sum over every dimension but dimension 1 (bias gradients).
    fn channel_sum(&self, x: &Tensor) -> Result<Tensor>;

    fn l2_normalize(&self, x: &Tensor, eps: f64) -> Result<Tensor>;
    fn l2_normalize_backward(&self, gy: &Tensor, x: &Tensor, eps: f64) -> Result<Tensor>;
    fn log_softmax(&self, x: &Tensor) -> Result<Tensor>;
    fn log_softmax_backward(&self, gy: &Tensor, y: &Tensor) -> Result<Tensor>;
    /// Mean cross-entropy of rows of `logits` against `labels`: (0-d loss, log-probabilities).
    fn cross_entropy(&self, logits: &Tensor, labels: &[i32]) -> Result<(Tensor, Tensor)>;
    fn cross_entropy_backward(&self, logp: &Tensor, labels: &[i32], g: &Tensor) -> Result<Tensor>;

    /// Combined-margin logits from cosines `[R, K]` (CosFace: m_arc 0; ArcFace: m_cos 0).
    fn margin_logits(&self, cos: &Tensor, labels: &[i32], m: Margin) -> Result<Tensor>;
    fn margin_logits_backward(&self, gy: &Tensor, cos: &Tensor, labels: &[i32], m: Margin) -> Result<Tensor>;

    // The sharded margin softmax a chunk of scored classes at a time (maskfr-parallel's
    // PartialFc; the kernels in `kernels::margin` say what each computes): `cos [B, w]` are
    // the cosines of scored columns `[j0, j0 + w)`, `target[i]` row i's target column among
    // the scored ones (−1: another rank's class); per-row vectors are `[B]`.

    /// Folds the chunk into the running `[max, sum, target logit]` in place.
    fn margin_chunk_stats(&self, cos: &Tensor, target: &[i32], j0: usize, m: Margin, stats: [&Tensor; 3])
        -> Result<()>;
    /// Each row's exp-sum against the global maximum, `sum·exp(max − gmax)`.
    fn margin_softmax_total(&self, max: &Tensor, sum: &Tensor, gmax: &Tensor) -> Result<Tensor>;
    /// The mean over rows of `gmax + ln gsum − target logit`, 0-d.
    fn margin_softmax_loss(&self, gmax: &Tensor, gsum: &Tensor, tlogit: &Tensor) -> Result<Tensor>;
    /// d loss / d cos of the chunk from the global maxima and exp-sums.
    fn margin_chunk_grad(
        &self,
        cos: &Tensor,
        target: &[i32],
        j0: usize,
        m: Margin,
        global: [&Tensor; 2],
    ) -> Result<Tensor>;
    /// `dst[idx[i]] = src[i]` for rows along dimension 0, in place.
    fn copy_rows_(&self, dst: &Tensor, idx: &[i32], src: &Tensor) -> Result<()>;

    /// One SGD step in place on every `(param, grad, buf)` triple (a GPU: one launch). With
    /// a `gate` (0-d, read on the device) the gradients are multiplied by it, and a gate that
    /// is not finite leaves everything unchanged: unscaling, clipping and skipping a bad step
    /// without the host reading anything.
    fn sgd_step_all(&self, triples: &[[&Tensor; 3]], hyper: SgdHyper, gate: Option<&Tensor>) -> Result<()>;
    /// The gate of a step whose gradients have squared norm `sumsq` (0-d): `1/scale ·
    /// min(1, max_norm / (√sumsq / scale + 1e-6))` (an f16 loss `scale`, 0-d on the device,
    /// undone; then torch's clip_grad_norm_ coefficient), NaN when `sumsq` is not finite.
    fn clip_gate(&self, sumsq: &Tensor, scale: Option<&Tensor>, max_norm: f64) -> Result<Tensor>;
    /// torch's GradScaler update on the device, after the step gated by `gate`: a gate that
    /// is not finite (the step was skipped) multiplies `scale` by `rule.backoff`, zeroes
    /// `good` and counts one in `overflows`; a finite one counts a good step, and
    /// `rule.interval` of them in a row multiply `scale` by `rule.growth`. All 0-d, in place.
    fn loss_scale_update(&self, gate: &Tensor, state: [&Tensor; 3], rule: ScaleRule) -> Result<()>;
}

/// GradScaler's growth rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaleRule {
    pub growth: f64,
    pub backoff: f64,
    pub interval: u32,
}

/// SGD's hyper-parameters (torch.optim.SGD: momentum, L2 weight decay).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdHyper {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
}

/// The backend of the device all `tensors` live on; mixed devices are an error naming `op`.
pub fn backend_for(op: &str, tensors: &[&Tensor]) -> Result<&'static dyn Backend> {
    let device = tensors.first().map_or(Device::Cpu, |t| t.device());
    if let Some(t) = tensors.iter().find(|t| t.device() != device) {
        return Err(Error::new(
            op,
            format!("tensors on different devices: {device} and {} (shape {:?})", t.device(), t.shape()),
        ));
    }
    device_backend(op, device)
}

/// Makes (once) and returns the backend of GPU `ordinal`, or says why there is none.
pub type CudaFactory = fn(usize) -> Result<&'static dyn Backend>;

static CUDA: OnceLock<CudaFactory> = OnceLock::new();

/// Installs the CUDA backend (maskfr-cuda does this; core cannot depend on it).
pub fn register_cuda(factory: CudaFactory) {
    let _ = CUDA.set(factory);
}

pub fn device_backend(op: &str, device: Device) -> Result<&'static dyn Backend> {
    match device {
        Device::Cpu => Ok(&cpu::CpuBackend),
        Device::Cuda(n) => {
            let factory =
                CUDA.get().ok_or_else(|| Error::new(op, format!("{device}: this build has no CUDA backend")))?;
            factory(n).map_err(|e| Error::new(op, format!("{device}: {e}")))
        }
    }
}

impl Tensor {
    /// This tensor on `device` (itself when it is there already).
    pub fn to(&self, device: Device) -> Result<Tensor> {
        match (self.device(), device) {
            (from, to) if from == to => Ok(self.clone()),
            (Device::Cpu, to) => device_backend("to", to)?.upload(self),
            (from, Device::Cpu) => device_backend("to", from)?.download(self),
            (from, to) => device_backend("to", to)?.upload(&device_backend("to", from)?.download(self)?),
        }
    }
}
