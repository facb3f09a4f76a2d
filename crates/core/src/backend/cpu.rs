//! The CPU backend: shape checks, then the slice kernels of [`crate::kernels`] in f32.

use super::checks::*;
use super::{Backend, BnOut, ConvParams, Margin, ScaleRule, SgdHyper};
use crate::kernels::conv::ConvGeom;
use crate::kernels::random::dropout;
use crate::kernels::{batchnorm, conv, elementwise, l2norm, loss, margin, matmul, prelu, reduce, rows as row_ops, sgd};
use crate::{ensure, random, DType, Result, Tensor};

pub struct CpuBackend;

/// A product over f16/bf16 operands: computed in f32 from their exact values, the result
/// rounded back to their dtype (the GPU's tensor cores also multiply exactly and accumulate
/// in f32, so this is the CPU's stand-in for mixed precision).
fn in_f32(
    op: &str,
    operands: &[&Tensor],
    bias: Option<&Tensor>,
    f: impl FnOnce(&[&Tensor]) -> Result<Tensor>,
) -> Result<Tensor> {
    let d = product_dtype(op, operands, bias)?;
    if d == DType::F32 {
        return f(operands);
    }
    let up: Vec<Tensor> = operands.iter().map(|t| t.cast(DType::F32)).collect();
    Ok(f(&up.iter().collect::<Vec<_>>())?.cast(d))
}

fn scalar_of(op: &str, t: &Tensor) -> Result<f64> {
    single(op, t)?;
    Ok(t.f32s(op)?[0] as f64)
}

/// The products in f32 (shape checks, then the kernels).
impl CpuBackend {
    fn conv2d_f32(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: ConvParams) -> Result<Tensor> {
        let g = ConvGeom::new(x.shape(), w.shape(), p.stride, p.pad)?;
        if let Some(b) = bias {
            vector("conv2d", "bias", b, g.o)?;
        }
        let (xd, wd) = (x.f32s("conv2d")?, w.f32s("conv2d")?);
        let bd = bias.map(|b| b.f32s("conv2d")).transpose()?;
        Ok(Tensor::overwritten(&g.out_shape(), |y| conv::conv2d_forward(&g, &xd, &wd, bd.as_deref(), y)))
    }

    fn conv2d_backward_input_f32(&self, gy: &Tensor, w: &Tensor, x_shape: &[usize], p: ConvParams) -> Result<Tensor> {
        let g = backward_geom(gy, x_shape, w.shape(), p)?;
        let (gyd, wd) = (gy.f32s("conv2d_backward")?, w.f32s("conv2d_backward")?);
        Ok(Tensor::overwritten(x_shape, |gx| conv::conv2d_backward_input(&g, &gyd, &wd, gx)))
    }

    fn conv2d_backward_weight_f32(&self, gy: &Tensor, x: &Tensor, w_shape: &[usize], p: ConvParams) -> Result<Tensor> {
        let g = backward_geom(gy, x.shape(), w_shape, p)?;
        let (gyd, xd) = (gy.f32s("conv2d_backward")?, x.f32s("conv2d_backward")?);
        Ok(Tensor::overwritten(w_shape, |gw| conv::conv2d_backward_weight(&g, &gyd, &xd, gw)))
    }

    fn matmul_f32(&self, a: &Tensor, b: &Tensor, trans_a: bool, trans_b: bool) -> Result<Tensor> {
        let op = "matmul";
        let (m, _, n) = matmul_dims(a, b, trans_a, trans_b)?;
        let mat = |d, t: &Tensor, trans| {
            let (r, c) = (t.shape()[0], t.shape()[1]);
            if trans {
                matmul::Mat::t(d, r, c)
            } else {
                matmul::Mat::new(d, r, c)
            }
        };
        let (ad, bd) = (a.f32s(op)?, b.f32s(op)?);
        let (ma, mb) = (mat(&ad[..], a, trans_a), mat(&bd[..], b, trans_b));
        Ok(Tensor::overwritten(&[m, n], |c| matmul::matmul(ma, mb, c, false, true)))
    }

    fn linear_f32(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let op = "linear";
        let (bn, i, o) = linear_dims(x, w, bias)?;
        let (xd, wd) = (x.f32s(op)?, w.f32s(op)?);
        let bd = bias.map(|b| b.f32s(op)).transpose()?;
        Ok(Tensor::overwritten(&[bn, o], |y| {
            if let Some(b) = &bd {
                y.chunks_mut(o).for_each(|r| r.copy_from_slice(b));
            }
            matmul::matmul(matmul::Mat::new(&xd, bn, i), matmul::Mat::t(&wd, o, i), y, bd.is_some(), true);
        }))
    }
}

impl Backend for CpuBackend {
    fn upload(&self, host: &Tensor) -> Result<Tensor> {
        Ok(host.clone())
    }

    fn download(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.clone())
    }

    fn cast(&self, t: &Tensor, dtype: DType) -> Result<Tensor> {
        Ok(t.cast(dtype))
    }

    fn full(&self, shape: &[usize], value: f32) -> Result<Tensor> {
        Ok(Tensor::full(shape, value))
    }

    fn randn(&self, shape: &[usize], mean: f64, std: f64, seed: u64, offset: u64) -> Result<Tensor> {
        Ok(Tensor::filled(shape, |v| random::fill_normal(seed, offset, mean, std, v)))
    }

    fn rand_uniform(&self, shape: &[usize], lo: f64, hi: f64, seed: u64) -> Result<Tensor> {
        Ok(Tensor::filled(shape, |v| random::fill_uniform(seed, lo, hi, v)))
    }

    fn copy_(&self, dst: &Tensor, src: &Tensor) -> Result<()> {
        same_shape("copy_", dst, src)?;
        if dst.shares_storage(src) {
            return Ok(());
        }
        let sd = src.f32s("copy_")?;
        dst.f32s_mut("copy_")?.copy_from_slice(&sd);
        Ok(())
    }

    fn conv2d(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: ConvParams) -> Result<Tensor> {
        in_f32("conv2d", &[x, w], bias, |t| self.conv2d_f32(t[0], t[1], bias, p))
    }

    fn conv2d_backward_input(&self, gy: &Tensor, w: &Tensor, x_shape: &[usize], p: ConvParams) -> Result<Tensor> {
        in_f32("conv2d_backward", &[gy, w], None, |t| self.conv2d_backward_input_f32(t[0], t[1], x_shape, p))
    }

    fn conv2d_backward_weight(&self, gy: &Tensor, x: &Tensor, w_shape: &[usize], p: ConvParams) -> Result<Tensor> {
        in_f32("conv2d_backward", &[gy, x], None, |t| self.conv2d_backward_weight_f32(t[0], t[1], w_shape, p))
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
        let c = g.c;
        let xd = x.f32s(op)?;
        let (mean, invstd) = if training {
            let (mean, var) = batchnorm::batch_stats(&g, &xd);
            let invstd = batchnorm::invstd(&var, eps);
            batchnorm::update_running(
                &g,
                &mean,
                &var,
                momentum,
                &mut running_mean.f32s_mut(op)?,
                &mut running_var.f32s_mut(op)?,
            );
            (mean, invstd)
        } else {
            (running_mean.to_vec(), batchnorm::invstd(&running_var.f32s(op)?, eps))
        };
        let (wd, bd) = (weight.f32s(op)?, bias.f32s(op)?);
        let y = Tensor::overwritten(x.shape(), |y| batchnorm::apply(&g, &xd, &mean, &invstd, &wd, &bd, y));
        Ok(BnOut { y, mean: Tensor::from_vec(mean, &[c])?, invstd: Tensor::from_vec(invstd, &[c])? })
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
        let c = g.c;
        let (gyd, xd, wd, md, sd) = (gy.f32s(op)?, x.f32s(op)?, weight.f32s(op)?, mean.f32s(op)?, invstd.f32s(op)?);
        let (mut gw, mut gb) = (vec![0f32; c], vec![0f32; c]);
        let gx = Tensor::filled(x.shape(), |gx| {
            batchnorm::backward(&g, &gyd, &xd, &md, &sd, &wd, training, gx, &mut gw, &mut gb)
        });
        Ok((gx, Tensor::from_vec(gw, &[c])?, Tensor::from_vec(gb, &[c])?))
    }

    fn prelu(&self, x: &Tensor, alpha: &Tensor) -> Result<Tensor> {
        let (_, c, s) = ncs("prelu", x, alpha.numel())?;
        let (xd, ad) = (x.f32s("prelu")?, alpha.f32s("prelu")?);
        Ok(Tensor::overwritten(x.shape(), |y| prelu::prelu(c, s, &xd, &ad, y)))
    }

    fn prelu_backward(&self, gy: &Tensor, x: &Tensor, alpha: &Tensor) -> Result<(Tensor, Tensor)> {
        let op = "prelu_backward";
        let (_, c, s) = ncs(op, x, alpha.numel())?;
        same_shape(op, gy, x)?;
        let (gyd, xd, ad) = (gy.f32s(op)?, x.f32s(op)?, alpha.f32s(op)?);
        let mut ga = vec![0f32; c];
        let gx = Tensor::filled(x.shape(), |gx| prelu::prelu_backward(c, s, &gyd, &xd, &ad, gx, &mut ga));
        Ok((gx, Tensor::from_vec(ga, alpha.shape())?))
    }

    fn dropout(&self, x: &Tensor, p: f64, seed: u64) -> Result<Tensor> {
        check_prob("dropout", p)?;
        let xd = x.f32s("dropout")?;
        Ok(Tensor::overwritten(x.shape(), |y| dropout(seed, p, &xd, y)))
    }

    fn matmul(&self, a: &Tensor, b: &Tensor, trans_a: bool, trans_b: bool) -> Result<Tensor> {
        in_f32("matmul", &[a, b], None, |t| self.matmul_f32(t[0], t[1], trans_a, trans_b))
    }

    fn linear(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        in_f32("linear", &[x, w], bias, |t| self.linear_f32(t[0], t[1], bias))
    }

    fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        same_shape("add", a, b)?;
        let (ad, bd) = (a.f32s("add")?, b.f32s("add")?);
        Ok(Tensor::overwritten(a.shape(), |o| elementwise::add(&ad, &bd, o)))
    }

    fn mul(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        same_shape("mul", a, b)?;
        let (ad, bd) = (a.f32s("mul")?, b.f32s("mul")?);
        Ok(Tensor::overwritten(a.shape(), |o| elementwise::mul(&ad, &bd, o)))
    }

    fn scale(&self, a: &Tensor, s: f64) -> Result<Tensor> {
        let ad = a.f32s("scale")?;
        Ok(Tensor::overwritten(a.shape(), |o| elementwise::scale(&ad, s as f32, o)))
    }

    fn scale_by(&self, a: &Tensor, s: &Tensor) -> Result<Tensor> {
        let (ad, k) = (a.f32s("scale_by")?, scalar_of("scale_by", s)? as f32);
        Ok(Tensor::overwritten(a.shape(), |o| elementwise::scale(&ad, k, o)))
    }

    fn add_channel(&self, x: &Tensor, v: &Tensor) -> Result<Tensor> {
        let op = "add_channel";
        let (_, c, sz) = ncs(op, x, v.numel())?;
        vector(op, "the per-channel values", v, c)?;
        let (xd, vd) = (x.f32s(op)?, v.f32s(op)?);
        Ok(Tensor::overwritten(x.shape(), |o| elementwise::add_channel(c, sz, &xd, &vd, o)))
    }

    fn add_scaled_(&self, acc: &Tensor, a: &Tensor, s: f64) -> Result<()> {
        same_shape("add_scaled_", acc, a)?;
        ensure!(!acc.shares_storage(a), "add_scaled_", "the accumulator and the addend share storage");
        let ad = a.f32s("add_scaled_")?;
        elementwise::add_scaled_into(&mut acc.f32s_mut("add_scaled_")?, &ad, s as f32);
        Ok(())
    }

    fn index_rows(&self, x: &Tensor, idx: &[i32]) -> Result<Tensor> {
        let op = "index_rows";
        let (ix, shape, width) = index_rows_args(x, idx)?;
        let xd = x.f32s(op)?;
        Ok(Tensor::filled(&shape, |o| row_ops::index_rows(width, &xd, &ix, o)))
    }

    fn scatter_rows(&self, x: &Tensor, idx: &[i32], rows: usize) -> Result<Tensor> {
        let op = "scatter_rows";
        let (ix, shape, width) = scatter_rows_args(x, idx, rows)?;
        let xd = x.f32s(op)?;
        Ok(Tensor::filled(&shape, |o| row_ops::scatter_rows(width, &xd, &ix, o)))
    }

    fn sum(&self, x: &Tensor) -> Result<Tensor> {
        let s = reduce::sum(&x.f32s("sum")?[..]);
        Tensor::from_vec(vec![s as f32], &[])
    }

    fn sum_squares(&self, x: &Tensor) -> Result<Tensor> {
        let s = reduce::sum_squares(&x.f32s("sum_squares")?[..]);
        Tensor::from_vec(vec![s as f32], &[])
    }

    fn expand_scalar(&self, g: &Tensor, shape: &[usize], scale: f64) -> Result<Tensor> {
        let v = scalar_of("expand_scalar", g)? * scale;
        Ok(Tensor::full(shape, v as f32))
    }

    fn channel_sum(&self, x: &Tensor) -> Result<Tensor> {
        let op = "channel_sum";
        let (n, c, s) = channel_dims(op, x)?;
        let xd = x.f32s(op)?;
        Ok(Tensor::filled(&[c], |o| reduce::channel_sum(n, c, s, &xd, o)))
    }

    fn l2_normalize(&self, x: &Tensor, eps: f64) -> Result<Tensor> {
        let (_, d) = rows("l2_normalize", x)?;
        let xd = x.f32s("l2_normalize")?;
        Ok(Tensor::filled(x.shape(), |y| l2norm::l2_normalize(d, eps, &xd, y)))
    }

    fn l2_normalize_backward(&self, gy: &Tensor, x: &Tensor, eps: f64) -> Result<Tensor> {
        let op = "l2_normalize_backward";
        let (_, d) = rows(op, x)?;
        same_shape(op, gy, x)?;
        let (gyd, xd) = (gy.f32s(op)?, x.f32s(op)?);
        Ok(Tensor::filled(x.shape(), |gx| l2norm::l2_normalize_backward(d, eps, &gyd, &xd, gx)))
    }

    fn log_softmax(&self, x: &Tensor) -> Result<Tensor> {
        let (_, k) = rows("log_softmax", x)?;
        let xd = x.f32s("log_softmax")?;
        Ok(Tensor::filled(x.shape(), |y| loss::log_softmax(k, &xd, y)))
    }

    fn log_softmax_backward(&self, gy: &Tensor, y: &Tensor) -> Result<Tensor> {
        let op = "log_softmax_backward";
        let (_, k) = rows(op, y)?;
        same_shape(op, gy, y)?;
        let (gyd, yd) = (gy.f32s(op)?, y.f32s(op)?);
        Ok(Tensor::filled(y.shape(), |gx| loss::log_softmax_backward(k, &gyd, &yd, gx)))
    }

    fn cross_entropy(&self, logits: &Tensor, labels: &[i32]) -> Result<(Tensor, Tensor)> {
        let op = "cross_entropy";
        let (_, k, lab) = labelled_rows(op, logits, labels)?;
        let logp = self.log_softmax(logits)?;
        let l = loss::nll_mean(k, &logp.f32s(op)?, &lab);
        Ok((Tensor::from_vec(vec![l as f32], &[])?, logp))
    }

    fn cross_entropy_backward(&self, logp: &Tensor, labels: &[i32], g: &Tensor) -> Result<Tensor> {
        let op = "cross_entropy_backward";
        let (_, k, lab) = labelled_rows(op, logp, labels)?;
        let gv = scalar_of(op, g)?;
        let ld = logp.f32s(op)?;
        Ok(Tensor::filled(logp.shape(), |gx| loss::cross_entropy_backward(k, &ld, &lab, gv, gx)))
    }

    fn margin_logits(&self, cos: &Tensor, labels: &[i32], m: Margin) -> Result<Tensor> {
        let op = "margin_logits";
        let (_, k, lab) = labelled_rows(op, cos, labels)?;
        let cd = cos.f32s(op)?;
        Ok(Tensor::filled(cos.shape(), |y| margin::margin_logits(k, &cd, &lab, m, y)))
    }

    fn margin_logits_backward(&self, gy: &Tensor, cos: &Tensor, labels: &[i32], m: Margin) -> Result<Tensor> {
        let op = "margin_logits_backward";
        same_shape(op, gy, cos)?;
        let (_, k, lab) = labelled_rows(op, cos, labels)?;
        let (gd, cd) = (gy.f32s(op)?, cos.f32s(op)?);
        Ok(Tensor::filled(cos.shape(), |gx| margin::margin_logits_backward(k, &gd, &cd, &lab, m, gx)))
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
        let (_, w) = margin_chunk_args(op, cos, target, &stats)?;
        let cd = cos.f32s(op)?;
        let [mx, sm, tl] = stats;
        let (mut mx, mut sm, mut tl) = (mx.f32s_mut(op)?, sm.f32s_mut(op)?, tl.f32s_mut(op)?);
        margin::margin_chunk_stats(w, &cd, target, j0, m, &mut mx, &mut sm, &mut tl);
        Ok(())
    }

    fn margin_softmax_total(&self, max: &Tensor, sum: &Tensor, gmax: &Tensor) -> Result<Tensor> {
        let op = "margin_softmax_total";
        margin_rows(op, &[max, sum, gmax])?;
        let (m, s, g) = (max.f32s(op)?, sum.f32s(op)?, gmax.f32s(op)?);
        Ok(Tensor::filled(max.shape(), |o| margin::margin_softmax_total(&m, &s, &g, o)))
    }

    fn margin_softmax_loss(&self, gmax: &Tensor, gsum: &Tensor, tlogit: &Tensor) -> Result<Tensor> {
        let op = "margin_softmax_loss";
        margin_rows(op, &[gmax, gsum, tlogit])?;
        let l = margin::margin_softmax_loss(&gmax.f32s(op)?, &gsum.f32s(op)?, &tlogit.f32s(op)?);
        Tensor::from_vec(vec![l as f32], &[])
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
        let (_, w) = margin_chunk_args(op, cos, target, &global)?;
        let (cd, gm, gs) = (cos.f32s(op)?, global[0].f32s(op)?, global[1].f32s(op)?);
        Ok(Tensor::filled(cos.shape(), |g| margin::margin_chunk_grad(w, &cd, target, j0, m, &gm, &gs, g)))
    }

    fn copy_rows_(&self, dst: &Tensor, idx: &[i32], src: &Tensor) -> Result<()> {
        let op = "copy_rows";
        let (ix, width) = copy_rows_args(dst, idx, src)?;
        let sd = src.f32s(op)?;
        let mut dd = dst.f32s_mut(op)?;
        row_ops::copy_rows(width, &ix, &sd, &mut dd);
        Ok(())
    }

    fn sgd_step_all(&self, triples: &[[&Tensor; 3]], h: SgdHyper, gate: Option<&Tensor>) -> Result<()> {
        let op = "sgd_step";
        let k = gate.map(|g| scalar_of(op, g)).transpose()?.unwrap_or(1.0);
        triples.iter().try_for_each(|[p, g, b]| sgd_args(p, g, b))?;
        if !k.is_finite() {
            return Ok(());
        }
        for [param, grad, buf] in triples {
            let gd = grad.f32s(op)?;
            let (mut pd, mut bd) = (param.f32s_mut(op)?, buf.f32s_mut(op)?);
            let [lr, momentum, wd, k] = [h.lr, h.momentum, h.weight_decay, k].map(|v| v as f32);
            sgd::sgd_step(&mut pd, &gd, &mut bd, sgd::Sgd { lr, momentum, weight_decay: wd, grad_scale: k });
        }
        Ok(())
    }

    fn clip_gate(&self, sumsq: &Tensor, scale: Option<&Tensor>, max_norm: f64) -> Result<Tensor> {
        let op = "clip_gate";
        let (s, k) = (scalar_of(op, sumsq)?, scale.map(|t| scalar_of(op, t)).transpose()?.unwrap_or(1.0));
        Tensor::from_vec(vec![sgd::clip_gate(s, 1.0 / k, max_norm) as f32], &[])
    }

    fn loss_scale_update(&self, gate: &Tensor, state: [&Tensor; 3], rule: ScaleRule) -> Result<()> {
        let op = "loss_scale_update";
        let g = scalar_of(op, gate)?;
        let mut s = [0f32; 3];
        for (v, t) in s.iter_mut().zip(state) {
            *v = scalar_of(op, t)? as f32;
        }
        sgd::loss_scale_update(g, &mut s, rule);
        for (t, v) in state.iter().zip(s) {
            t.f32s_mut(op)?[0] = v;
        }
        Ok(())
    }
}
