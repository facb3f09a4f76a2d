//! One wrapper per backend op: unwrap handles, dispatch on the device, wrap results.

use crate::js;
use crate::tensor::{dims, NativeTensor};
use maskfr_core::{backend_for, Backend, ConvParams, Margin, ScaleRule, SgdHyper, Tensor};
use napi::bindgen_prelude::*;
use napi_derive::napi;

fn be(op: &str, ts: &[&Tensor]) -> Result<&'static dyn Backend> {
    js(backend_for(op, ts))
}

fn wrap(t: maskfr_core::Result<Tensor>) -> Result<NativeTensor> {
    js(t).map(NativeTensor::wrap)
}

fn pair(op: &str, what: &str, v: &[u32]) -> Result<[usize; 2]> {
    match v {
        [a] => Ok([*a as usize; 2]),
        [a, b] => Ok([*a as usize, *b as usize]),
        _ => Err(Error::new(Status::InvalidArg, format!("{op}: {what} must have 1 or 2 values, got {v:?}"))),
    }
}

fn conv_params(stride: &[u32], pad: &[u32]) -> Result<ConvParams> {
    Ok(ConvParams { stride: pair("conv2d", "stride", stride)?, pad: pair("conv2d", "padding", pad)? })
}

/// Copies `src` into `dst` in place (from another device too: loading a checkpoint into a
/// model on a GPU).
#[napi(catch_unwind)]
pub fn copy_into(dst: &NativeTensor, src: &NativeTensor) -> Result<()> {
    let d = dst.get()?;
    let s = js(src.get()?.to(d.device()))?;
    js(be("copy_", &[d, &s])?.copy_(d, &s))
}

#[napi(js_name = "conv2d", catch_unwind)]
pub fn conv2d(
    x: &NativeTensor,
    w: &NativeTensor,
    bias: Option<&NativeTensor>,
    stride: Vec<u32>,
    pad: Vec<u32>,
) -> Result<NativeTensor> {
    let (x, w) = (x.get()?, w.get()?);
    let b = bias.map(|b| b.get()).transpose()?;
    wrap(be("conv2d", &[x, w])?.conv2d(x, w, b, conv_params(&stride, &pad)?))
}

#[napi(js_name = "conv2dBackwardInput", catch_unwind)]
pub fn conv2d_backward_input(
    gy: &NativeTensor,
    w: &NativeTensor,
    x_shape: Vec<u32>,
    stride: Vec<u32>,
    pad: Vec<u32>,
) -> Result<NativeTensor> {
    let (gy, w) = (gy.get()?, w.get()?);
    wrap(be("conv2d_backward", &[gy, w])?.conv2d_backward_input(gy, w, &dims(&x_shape), conv_params(&stride, &pad)?))
}

#[napi(js_name = "conv2dBackwardWeight", catch_unwind)]
pub fn conv2d_backward_weight(
    gy: &NativeTensor,
    x: &NativeTensor,
    w_shape: Vec<u32>,
    stride: Vec<u32>,
    pad: Vec<u32>,
) -> Result<NativeTensor> {
    let (gy, x) = (gy.get()?, x.get()?);
    wrap(be("conv2d_backward", &[gy, x])?.conv2d_backward_weight(gy, x, &dims(&w_shape), conv_params(&stride, &pad)?))
}

/// Returns [y, savedMean, savedInvstd]; in training the running statistics update in place.
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn batch_norm(
    x: &NativeTensor,
    weight: &NativeTensor,
    bias: &NativeTensor,
    running_mean: &NativeTensor,
    running_var: &NativeTensor,
    training: bool,
    momentum: f64,
    eps: f64,
) -> Result<Vec<NativeTensor>> {
    let ts = [x.get()?, weight.get()?, bias.get()?, running_mean.get()?, running_var.get()?];
    let out = js(be("batch_norm", &ts)?.batch_norm(ts[0], ts[1], ts[2], ts[3], ts[4], training, momentum, eps))?;
    Ok(vec![NativeTensor::wrap(out.y), NativeTensor::wrap(out.mean), NativeTensor::wrap(out.invstd)])
}

/// Returns [gx, gweight, gbias].
#[napi(catch_unwind)]
pub fn batch_norm_backward(
    gy: &NativeTensor,
    x: &NativeTensor,
    weight: &NativeTensor,
    mean: &NativeTensor,
    invstd: &NativeTensor,
    training: bool,
) -> Result<Vec<NativeTensor>> {
    let ts = [gy.get()?, x.get()?, weight.get()?, mean.get()?, invstd.get()?];
    let (gx, gw, gb) =
        js(be("batch_norm_backward", &ts)?.batch_norm_backward(ts[0], ts[1], ts[2], ts[3], ts[4], training))?;
    Ok(vec![NativeTensor::wrap(gx), NativeTensor::wrap(gw), NativeTensor::wrap(gb)])
}

#[napi(catch_unwind)]
pub fn prelu(x: &NativeTensor, alpha: &NativeTensor) -> Result<NativeTensor> {
    let (x, a) = (x.get()?, alpha.get()?);
    wrap(be("prelu", &[x, a])?.prelu(x, a))
}

/// Returns [gx, galpha].
#[napi(catch_unwind)]
pub fn prelu_backward(gy: &NativeTensor, x: &NativeTensor, alpha: &NativeTensor) -> Result<Vec<NativeTensor>> {
    let (gy, x, a) = (gy.get()?, x.get()?, alpha.get()?);
    let (gx, ga) = js(be("prelu_backward", &[gy, x, a])?.prelu_backward(gy, x, a))?;
    Ok(vec![NativeTensor::wrap(gx), NativeTensor::wrap(ga)])
}

#[napi(catch_unwind)]
pub fn dropout(x: &NativeTensor, p: f64, seed: i64) -> Result<NativeTensor> {
    let x = x.get()?;
    wrap(be("dropout", &[x])?.dropout(x, p, seed as u64))
}

#[napi(catch_unwind)]
pub fn matmul(a: &NativeTensor, b: &NativeTensor, trans_a: bool, trans_b: bool) -> Result<NativeTensor> {
    let (a, b) = (a.get()?, b.get()?);
    wrap(be("matmul", &[a, b])?.matmul(a, b, trans_a, trans_b))
}

#[napi(catch_unwind)]
pub fn linear(x: &NativeTensor, w: &NativeTensor, bias: Option<&NativeTensor>) -> Result<NativeTensor> {
    let (x, w) = (x.get()?, w.get()?);
    let b = bias.map(|b| b.get()).transpose()?;
    wrap(be("linear", &[x, w])?.linear(x, w, b))
}

#[napi(catch_unwind)]
pub fn add(a: &NativeTensor, b: &NativeTensor) -> Result<NativeTensor> {
    let (a, b) = (a.get()?, b.get()?);
    wrap(be("add", &[a, b])?.add(a, b))
}

#[napi(catch_unwind)]
pub fn mul(a: &NativeTensor, b: &NativeTensor) -> Result<NativeTensor> {
    let (a, b) = (a.get()?, b.get()?);
    wrap(be("mul", &[a, b])?.mul(a, b))
}

#[napi(catch_unwind)]
pub fn scale(a: &NativeTensor, s: f64) -> Result<NativeTensor> {
    let a = a.get()?;
    wrap(be("scale", &[a])?.scale(a, s))
}

/// `a · s` with `s` a 0-d tensor on `a`'s device, read there.
#[napi(catch_unwind)]
pub fn scale_by(a: &NativeTensor, s: &NativeTensor) -> Result<NativeTensor> {
    let (a, s) = (a.get()?, s.get()?);
    wrap(be("scale_by", &[a, s])?.scale_by(a, s))
}

/// `x + v[c]` per channel (dimension 1).
#[napi(catch_unwind)]
pub fn add_channel(x: &NativeTensor, v: &NativeTensor) -> Result<NativeTensor> {
    let (x, v) = (x.get()?, v.get()?);
    wrap(be("add_channel", &[x, v])?.add_channel(x, v))
}

/// `acc += a·s` in place.
#[napi(catch_unwind)]
pub fn add_scaled_into(acc: &NativeTensor, a: &NativeTensor, s: f64) -> Result<()> {
    let (acc, a) = (acc.get()?, a.get()?);
    js(be("add_scaled_", &[acc, a])?.add_scaled_(acc, a, s))
}

/// Rows `idx` of `x` (dimension 0).
#[napi(catch_unwind)]
pub fn index_rows(x: &NativeTensor, idx: Int32Array) -> Result<NativeTensor> {
    let x = x.get()?;
    wrap(be("index_rows", &[x])?.index_rows(x, &idx))
}

/// `rows` rows of zeros with `x[i]` added at row `idx[i]`.
#[napi(catch_unwind)]
pub fn scatter_rows(x: &NativeTensor, idx: Int32Array, rows: u32) -> Result<NativeTensor> {
    let x = x.get()?;
    wrap(be("scatter_rows", &[x])?.scatter_rows(x, &idx, rows as usize))
}

#[napi(catch_unwind)]
pub fn sum(x: &NativeTensor) -> Result<NativeTensor> {
    let x = x.get()?;
    wrap(be("sum", &[x])?.sum(x))
}

/// Σx² as a 0-d tensor on `x`'s device (norms; not differentiable).
#[napi(catch_unwind)]
pub fn sum_squares(x: &NativeTensor) -> Result<NativeTensor> {
    let x = x.get()?;
    wrap(be("sum_squares", &[x])?.sum_squares(x))
}

#[napi(catch_unwind)]
pub fn expand_scalar(g: &NativeTensor, shape: Vec<u32>, scale: f64) -> Result<NativeTensor> {
    let g = g.get()?;
    wrap(be("expand_scalar", &[g])?.expand_scalar(g, &dims(&shape), scale))
}

#[napi(catch_unwind)]
pub fn channel_sum(x: &NativeTensor) -> Result<NativeTensor> {
    let x = x.get()?;
    wrap(be("channel_sum", &[x])?.channel_sum(x))
}

#[napi(catch_unwind)]
pub fn l2_normalize(x: &NativeTensor, eps: f64) -> Result<NativeTensor> {
    let x = x.get()?;
    wrap(be("l2_normalize", &[x])?.l2_normalize(x, eps))
}

#[napi(catch_unwind)]
pub fn l2_normalize_backward(gy: &NativeTensor, x: &NativeTensor, eps: f64) -> Result<NativeTensor> {
    let (gy, x) = (gy.get()?, x.get()?);
    wrap(be("l2_normalize_backward", &[gy, x])?.l2_normalize_backward(gy, x, eps))
}

#[napi(catch_unwind)]
pub fn log_softmax(x: &NativeTensor) -> Result<NativeTensor> {
    let x = x.get()?;
    wrap(be("log_softmax", &[x])?.log_softmax(x))
}

#[napi(catch_unwind)]
pub fn log_softmax_backward(gy: &NativeTensor, y: &NativeTensor) -> Result<NativeTensor> {
    let (gy, y) = (gy.get()?, y.get()?);
    wrap(be("log_softmax_backward", &[gy, y])?.log_softmax_backward(gy, y))
}

/// Returns [loss (0-d), logProbabilities].
#[napi(catch_unwind)]
pub fn cross_entropy(logits: &NativeTensor, labels: Int32Array) -> Result<Vec<NativeTensor>> {
    let l = logits.get()?;
    let (loss, logp) = js(be("cross_entropy", &[l])?.cross_entropy(l, &labels))?;
    Ok(vec![NativeTensor::wrap(loss), NativeTensor::wrap(logp)])
}

#[napi(catch_unwind)]
pub fn cross_entropy_backward(logp: &NativeTensor, labels: Int32Array, g: &NativeTensor) -> Result<NativeTensor> {
    let (lp, g) = (logp.get()?, g.get()?);
    wrap(be("cross_entropy_backward", &[lp, g])?.cross_entropy_backward(lp, &labels, g))
}

/// Combined-margin logits from cosines (CosFace: mArc 0; ArcFace: mCos 0).
#[napi(catch_unwind)]
pub fn margin_logits(cos: &NativeTensor, labels: Int32Array, s: f64, m_arc: f64, m_cos: f64) -> Result<NativeTensor> {
    let c = cos.get()?;
    wrap(be("margin_logits", &[c])?.margin_logits(c, &labels, Margin { s, m_arc, m_cos }))
}

#[napi(catch_unwind)]
pub fn margin_logits_backward(
    gy: &NativeTensor,
    cos: &NativeTensor,
    labels: Int32Array,
    s: f64,
    m_arc: f64,
) -> Result<NativeTensor> {
    let (g, c) = (gy.get()?, cos.get()?);
    wrap(be("margin_logits_backward", &[g, c])?.margin_logits_backward(g, c, &labels, Margin { s, m_arc, m_cos: 0.0 }))
}

/// One SGD step on every `(params[i], grads[i], bufs[i])`: one fused launch on a GPU. The
/// gradients are multiplied by `gate` (0-d, on their device) when given; a gate that is not
/// finite changes nothing.
#[napi(catch_unwind)]
pub fn sgd_step_all(
    params: Vec<&NativeTensor>,
    grads: Vec<&NativeTensor>,
    bufs: Vec<&NativeTensor>,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
    gate: Option<&NativeTensor>,
) -> Result<()> {
    if params.len() != grads.len() || params.len() != bufs.len() {
        let n = (params.len(), grads.len(), bufs.len());
        return Err(Error::new(Status::InvalidArg, format!("sgd_step: {n:?} parameters, gradients and buffers")));
    }
    fn get<'a>(v: &[&'a NativeTensor]) -> Result<Vec<&'a Tensor>> {
        v.iter().map(|t| t.get()).collect()
    }
    let (p, g, b) = (get(&params)?, get(&grads)?, get(&bufs)?);
    let gate = gate.map(|t| t.get()).transpose()?;
    let triples: Vec<[&Tensor; 3]> = (0..p.len()).map(|i| [p[i], g[i], b[i]]).collect();
    let all: Vec<&Tensor> = triples.iter().flatten().copied().chain(gate).collect();
    let h = SgdHyper { lr, momentum, weight_decay };
    js(be("sgd_step", &all)?.sgd_step_all(&triples, h, gate))
}

/// The optimiser's gate for gradients of squared norm `sumsq` carrying the loss `scale`
/// (0-d tensors on one device; see Backend::clip_gate).
#[napi(catch_unwind)]
pub fn clip_gate(sumsq: &NativeTensor, scale: Option<&NativeTensor>, max_norm: f64) -> Result<NativeTensor> {
    let s = sumsq.get()?;
    let k = scale.map(|t| t.get()).transpose()?;
    let all: Vec<&Tensor> = std::iter::once(s).chain(k).collect();
    wrap(be("clip_gate", &all)?.clip_gate(s, k, max_norm))
}

/// GradScaler's update of `scale`, `good` and `overflows` (0-d) after the step gated by
/// `gate`, on their device (see Backend::loss_scale_update).
#[napi(catch_unwind)]
pub fn loss_scale_update(
    gate: &NativeTensor,
    scale: &NativeTensor,
    good: &NativeTensor,
    overflows: &NativeTensor,
    growth: f64,
    backoff: f64,
    interval: u32,
) -> Result<()> {
    let (g, s, n, o) = (gate.get()?, scale.get()?, good.get()?, overflows.get()?);
    js(be("loss_scale_update", &[g, s, n, o])?.loss_scale_update(g, [s, n, o], ScaleRule { growth, backoff, interval }))
}
