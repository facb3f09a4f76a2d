//! Every op of the CUDA backend against the CPU backend (maskfr-core's reference) on random
//! inputs, forward and backward, through the same `Backend` calls the bindings make.
//! Skipped, with the reason, where there is no GPU or library (CI); bench/gpu/run.sh runs it
//! on a lent one with MASKFR_REQUIRE_GPU=1, which turns those skips into failures. Tolerances are relative to the largest CPU magnitude: 1e-5 for f32
//! kernels (both sides sum in f64), 5e-3 for f32 convolutions and 1e-2 for f16/bf16 ones
//! (cuDNN may use TF32/tensor cores as PyTorch does by default), exact for dropout, row
//! gathers, copies and casts.

mod common;
#[path = "../../core/tests/cases/zero_size.rs"]
mod zero_size;

use common::{or_skip, REQUIRE_GPU};
use maskfr_core::backend::device_backend;
use maskfr_core::{Backend, ConvParams, DType, Device, Margin, ScaleRule, SgdHyper, Tensor};
use maskfr_cuda::nccl::Reduction;
use std::sync::{Mutex, MutexGuard};
use zero_size::zero_size_results;

struct Pair {
    cpu: &'static dyn Backend,
    gpu: &'static dyn Backend,
    /// The GPU's allocator is shared: one test at a time keeps the memory figures exact.
    _turn: MutexGuard<'static, ()>,
}

static TURN: Mutex<()> = Mutex::new(());

fn pair() -> Option<Pair> {
    maskfr_cuda::install();
    let cpu = device_backend("test", Device::Cpu).unwrap();
    let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let gpu = or_skip(device_backend("test", Device::Cuda(0)), &[REQUIRE_GPU])?;
    Some(Pair { cpu, gpu, _turn: turn })
}

fn rnd(shape: &[usize], seed: u64) -> Tensor {
    let cpu = device_backend("test", Device::Cpu).unwrap();
    cpu.randn(shape, 0.3, 1.5, seed, 0).unwrap()
}

impl Pair {
    fn close(&self, what: &str, cpu: &Tensor, gpu: &Tensor, tol: f32) {
        assert_eq!(gpu.device(), Device::Cuda(0), "{what}: result not on the GPU");
        assert_eq!(cpu.shape(), gpu.shape(), "{what}: shapes");
        let (c, g) = (cpu.values().unwrap(), gpu.values().unwrap());
        let scale = c.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
        let err = c.iter().zip(&g).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(g.iter().all(|v| v.is_finite()), "{what}: non-finite GPU values");
        assert!(c.iter().all(|v| v.is_finite()), "{what}: non-finite CPU values");
        assert!(err <= tol * scale, "{what}: max error {err:e} against scale {scale} (tolerance {tol:e})");
    }

    /// Runs `op` on the CPU with `inputs` and on the GPU with copies (made first, so ops
    /// that write their inputs start from the same values), then compares every output.
    fn same(&self, what: &str, tol: f32, inputs: &[Tensor], op: impl Fn(&dyn Backend, &[Tensor]) -> Vec<Tensor>) {
        let up: Vec<Tensor> = inputs.iter().map(|t| self.gpu.upload(t).unwrap()).collect();
        let c = op(self.cpu, inputs);
        let g = op(self.gpu, &up);
        for (i, (c, g)) in c.iter().zip(&g).enumerate() {
            self.close(&format!("{what} #{i}"), c, g, tol);
        }
    }
}

const K: f32 = 1e-5;

/// bench/gpu/run.sh runs this first: the driver's CUDA version, NVRTC's and what kernels
/// compile to, so a mismatch reads as one (opening the GPU refuses it, naming the versions).
#[test]
fn compile_target_fits_the_driver() {
    let Some(_p) = pair() else { return };
    let r = maskfr_cuda::probe();
    println!("driver CUDA {:?}, NVRTC {:?}", r.driver_version, maskfr_cuda::nvrtc_version());
    for g in &r.gpus {
        println!("GPU {}: {}, sm_{}: kernels compile to {:?}", g.index, g.name, g.arch, g.target);
        assert!(g.target.is_ok(), "GPU {}: {:?}", g.index, g.target);
    }
}

#[test]
fn transfers_casts_and_random_tensors() {
    let Some(p) = pair() else { return };
    let x = rnd(&[3, 5, 7], 1);
    let back = p.gpu.download(&p.gpu.upload(&x).unwrap()).unwrap();
    assert_eq!(back.to_vec(), x.to_vec(), "round trip");
    // Batches large enough for the copy stream: three in a row (both landings, then the
    // first again, grown), each read by a kernel queued right after its upload.
    for (i, n) in [3 << 18, 3 << 18, 5 << 18].into_iter().enumerate() {
        let big = rnd(&[n], 50 + i as u64);
        let twice = p.gpu.scale(&p.gpu.upload(&big).unwrap(), 2.0).unwrap();
        let want: Vec<f32> = big.to_vec().iter().map(|v| v * 2.0).collect();
        assert!(twice.values().unwrap() == want, "upload {i} through the copy stream");
    }
    // Small uploads all around the pinned ring and past its start again, none read until
    // the end.
    let small: Vec<Tensor> = (0..5000).map(|i| p.gpu.upload(&Tensor::full(&[1000], i as f32)).unwrap()).collect();
    for i in [0, 1, 1023, 1024, 4095, 4096, 4999] {
        assert!(small[i].values().unwrap().iter().all(|&v| v == i as f32), "small upload {i}");
    }
    for dtype in [DType::F16, DType::BF16] {
        let g = p.gpu.cast(&p.gpu.upload(&x).unwrap(), dtype).unwrap();
        assert_eq!(g.dtype(), dtype);
        assert_eq!(g.values().unwrap(), x.cast(dtype).to_vec(), "{dtype:?} rounding");
        assert_eq!(p.gpu.upload(&x.cast(dtype)).unwrap().values().unwrap(), x.cast(dtype).to_vec());
    }
    p.close("full", &p.cpu.full(&[1000], 2.5).unwrap(), &p.gpu.full(&[1000], 2.5).unwrap(), 0.0);
    p.close(
        "randn",
        &p.cpu.randn(&[4097], 1.0, 2.0, 9, 5).unwrap(),
        &p.gpu.randn(&[4097], 1.0, 2.0, 9, 5).unwrap(),
        1e-6,
    );
    p.close(
        "uniform",
        &p.cpu.rand_uniform(&[999], -2.0, 3.0, 4).unwrap(),
        &p.gpu.rand_uniform(&[999], -2.0, 3.0, 4).unwrap(),
        1e-7,
    );
    p.same("copy_", 0.0, &[rnd(&[10, 3], 2), rnd(&[10, 3], 3)], |b, t| {
        b.copy_(&t[0], &t[1]).unwrap();
        vec![t[0].clone()]
    });
}

/// `t` with every value replaced by its magnitude (for error bounds: the op on |inputs|).
fn abs(t: &Tensor) -> Tensor {
    Tensor::from_vec(t.to_vec().iter().map(|v| v.abs()).collect(), t.shape()).unwrap()
}

/// Elementwise |gpu − cpu| ≤ rel·bound, `bound` being the op on the inputs' magnitudes
/// (Σ|x||w| per output): an error bound that holds for every output, small ones included.
fn within(what: &str, cpu: &Tensor, gpu: &Tensor, bound: &Tensor, rel: f32) {
    let (c, g, b) = (cpu.to_vec(), gpu.values().unwrap(), bound.to_vec());
    assert_eq!(cpu.shape(), gpu.shape(), "{what}: shapes");
    for (i, ((c, g), b)) in c.iter().zip(&g).zip(&b).enumerate() {
        assert!(
            g.is_finite() && (c - g).abs() <= rel * b + 1e-30,
            "{what}: value {i}: gpu {g} cpu {c}, bound {rel:e}·{b}"
        );
    }
}

#[test]
fn convolutions_forward_and_backward_with_and_without_tf32() {
    let Some(p) = pair() else { return };
    let before = maskfr_cuda::tf32();
    // 3×3 stride 1 and 2, 1×1 stride 2 (IResNet's shapes, small).
    for (i, (c, o, hw, k, s, pad)) in
        [(8, 16, 14, 3, 1, 1), (16, 32, 14, 3, 2, 1), (16, 32, 14, 1, 2, 0)].into_iter().enumerate()
    {
        let prm = ConvParams { stride: [s, s], pad: [pad, pad] };
        let (x, w) = (rnd(&[4, c, hw, hw], 10 + i as u64), rnd(&[o, c, k, k], 20 + i as u64));
        let y = p.cpu.conv2d(&x, &w, None, prm).unwrap();
        let gy = rnd(y.shape(), 40);
        let (xs, ws) = (x.shape().to_vec(), w.shape().to_vec());
        let run = |be: &dyn Backend, x: &Tensor, w: &Tensor, gy: &Tensor| {
            [
                be.conv2d(x, w, None, prm).unwrap(),
                be.conv2d_backward_input(gy, w, &xs, prm).unwrap(),
                be.conv2d_backward_weight(gy, x, &ws, prm).unwrap(),
            ]
        };
        let want = run(p.cpu, &x, &w, &gy);
        let bound = run(p.cpu, &abs(&x), &abs(&w), &abs(&gy));
        // The longest sum: backward-weight's N·OH·OW terms; f32 accumulation on both sides.
        let terms = (4 * y.shape()[2] * y.shape()[3]).max(c * k * k) as f32;
        let fma = 2.0 * terms * f32::EPSILON / 2.0;
        // TF32 keeps 10 mantissa bits: each operand off by ≤ 2⁻¹⁰ relative (truncated or
        // rounded), a product by ≤ 2⁻⁹, plus the same f32 accumulation.
        for (tf32, rel) in [(false, fma), (true, 2f32.powi(-9) + fma)] {
            maskfr_cuda::set_tf32(maskfr_cuda::Tf32 { conv: tf32, matmul: false });
            let (gx, gw, ggy) = (p.gpu.upload(&x).unwrap(), p.gpu.upload(&w).unwrap(), p.gpu.upload(&gy).unwrap());
            let got = run(p.gpu, &gx, &gw, &ggy);
            for (d, ((c, g), b)) in want.iter().zip(&got).zip(&bound).enumerate() {
                within(&format!("conv {i} direction {d} tf32={tf32}"), c, g, b, rel);
            }
        }
        maskfr_cuda::set_tf32(before);
        let b = rnd(&[o], 30);
        p.same("conv2d with bias", 5e-3, &[x.clone(), w.clone(), b], |be, t| {
            vec![be.conv2d(&t[0], &t[1], Some(&t[2]), prm).unwrap()]
        });
        for dtype in [DType::F16, DType::BF16] {
            let (xh, wh) = (x.cast(dtype), w.cast(dtype));
            let want = p.cpu.conv2d(&xh.cast(DType::F32), &wh.cast(DType::F32), None, prm).unwrap();
            let got = p.gpu.conv2d(&p.gpu.upload(&xh).unwrap(), &p.gpu.upload(&wh).unwrap(), None, prm).unwrap();
            assert_eq!(got.dtype(), dtype);
            p.close(&format!("conv2d {dtype:?}"), &want, &got, 1e-2);
        }
    }
}

#[test]
fn matmul_with_tf32_allowed() {
    let Some(p) = pair() else { return };
    let before = maskfr_cuda::tf32();
    let (a, b) = (rnd(&[64, 300], 1), rnd(&[300, 48], 2));
    let bound = p.cpu.matmul(&abs(&a), &abs(&b), false, false).unwrap();
    maskfr_cuda::set_tf32(maskfr_cuda::Tf32 { conv: true, matmul: true });
    let got = p.gpu.matmul(&p.gpu.upload(&a).unwrap(), &p.gpu.upload(&b).unwrap(), false, false).unwrap();
    maskfr_cuda::set_tf32(before);
    within(
        "matmul tf32",
        &p.cpu.matmul(&a, &b, false, false).unwrap(),
        &got,
        &bound,
        2f32.powi(-9) + 300.0 * f32::EPSILON,
    );
}

/// Every op on zero-size inputs gives the CPU's (empty, or zero) result: nothing is launched
/// over an empty grid, and cuDNN never sees a zero dimension.
#[test]
fn zero_size_inputs_give_the_cpus_results() {
    let Some(p) = pair() else { return };
    let cpu = zero_size_results(p.cpu, &|t| t.clone());
    let gpu = zero_size_results(p.gpu, &|t| p.gpu.upload(t).unwrap());
    for ((what, c), (_, g)) in cpu.iter().zip(&gpu) {
        p.close(what, c, g, 0.0);
    }
}

#[test]
fn batch_norm_prelu_dropout() {
    let Some(p) = pair() else { return };
    let (x, w, b, rm, rv) = (
        rnd(&[6, 5, 7, 7], 1),
        rnd(&[5], 2),
        rnd(&[5], 3),
        rnd(&[5], 4),
        p.cpu.rand_uniform(&[5], 0.5, 2.0, 5).unwrap(),
    );
    let gy = rnd(&[6, 5, 7, 7], 6);
    for training in [true, false] {
        p.same(
            &format!("batch_norm training={training}"),
            K,
            &[x.clone(), w.clone(), b.clone(), rm.clone(), rv.clone(), gy.clone()],
            |be, t| {
                let o = be.batch_norm(&t[0], &t[1], &t[2], &t[3], &t[4], training, 0.1, 1e-5).unwrap();
                let (gx, gw, gb) = be.batch_norm_backward(&t[5], &t[0], &t[1], &o.mean, &o.invstd, training).unwrap();
                vec![o.y, o.mean, o.invstd, t[3].clone(), t[4].clone(), gx, gw, gb]
            },
        );
    }
    p.same("prelu", K, &[x.clone(), w.clone(), gy.clone()], |be, t| {
        let (gx, ga) = be.prelu_backward(&t[2], &t[0], &t[1]).unwrap();
        vec![be.prelu(&t[0], &t[1]).unwrap(), gx, ga]
    });
    p.same("dropout", 0.0, &[x], |be, t| vec![be.dropout(&t[0], 0.3, 77).unwrap()]);
}

#[test]
fn products_and_elementwise() {
    let Some(p) = pair() else { return };
    let (a, b) = (rnd(&[33, 17], 1), rnd(&[17, 45], 2));
    let (at, bt) = (rnd(&[17, 33], 3), rnd(&[45, 17], 4));
    p.same("matmul", K, &[a.clone(), b, at, bt.clone()], |be, t| {
        vec![
            be.matmul(&t[0], &t[1], false, false).unwrap(),
            be.matmul(&t[2], &t[1], true, false).unwrap(),
            be.matmul(&t[0], &t[3], false, true).unwrap(),
            be.matmul(&t[2], &t[3], true, true).unwrap(),
        ]
    });
    p.same("linear", K, &[a.clone(), bt, rnd(&[45], 5)], |be, t| vec![be.linear(&t[0], &t[1], Some(&t[2])).unwrap()]);
    let (x, y, v) = (rnd(&[4, 6, 5], 6), rnd(&[4, 6, 5], 7), rnd(&[6], 8));
    p.same("elementwise", K, &[x, y, v], |be, t| {
        let acc = be.scale(&t[0], 1.0).unwrap();
        be.add_scaled_(&acc, &t[1], -0.7).unwrap();
        vec![
            be.add(&t[0], &t[1]).unwrap(),
            be.mul(&t[0], &t[1]).unwrap(),
            be.scale(&t[0], -2.5).unwrap(),
            be.add_channel(&t[0], &t[2]).unwrap(),
            acc,
        ]
    });
    let idx = [3, 0, 7, 5];
    p.same("rows", 0.0, &[rnd(&[8, 3, 2], 9)], |be, t| {
        let g = be.index_rows(&t[0], &idx).unwrap();
        vec![g.clone(), be.scatter_rows(&g, &idx, 9).unwrap()]
    });
}

#[test]
fn reductions_normalisation_and_losses() {
    let Some(p) = pair() else { return };
    let labels = [3, 0, 9, 9, 1, 4];
    p.same("sum", K, &[rnd(&[100_003], 1), rnd(&[4, 6, 5, 5], 2)], |be, t| {
        let s = be.sum(&t[0]).unwrap();
        let sq = be.sum_squares(&t[1]).unwrap();
        let by = be.scale_by(&t[1], &s).unwrap();
        vec![s.clone(), be.expand_scalar(&s, &[7, 3], 0.25).unwrap(), be.channel_sum(&t[1]).unwrap(), sq, by]
    });
    p.same("l2_normalize", K, &[rnd(&[6, 512], 3), rnd(&[6, 512], 4)], |be, t| {
        vec![be.l2_normalize(&t[0], 1e-12).unwrap(), be.l2_normalize_backward(&t[1], &t[0], 1e-12).unwrap()]
    });
    p.same("log_softmax", K, &[rnd(&[6, 10], 5), rnd(&[6, 10], 6), p.cpu.full(&[], 1.5).unwrap()], |be, t| {
        let y = be.log_softmax(&t[0]).unwrap();
        let (loss, logp) = be.cross_entropy(&t[0], &labels).unwrap();
        let gce = be.cross_entropy_backward(&logp, &labels, &t[2]).unwrap();
        vec![be.log_softmax_backward(&t[1], &y).unwrap(), y, loss, gce]
    });
    let cos = p.cpu.rand_uniform(&[6, 10], -1.0, 1.0, 7).unwrap();
    for (m_arc, m_cos) in [(0.0, 0.4), (0.5, 0.0)] {
        p.same(&format!("margin {m_arc} {m_cos}"), K, &[cos.clone(), rnd(&[6, 10], 8)], |be, t| {
            let m = Margin { s: 64.0, m_arc, m_cos };
            vec![
                be.margin_logits(&t[0], &labels, m).unwrap(),
                be.margin_logits_backward(&t[1], &t[0], &labels, m).unwrap(),
            ]
        });
    }
}

#[test]
fn sharded_margin_softmax_chunk_ops() {
    let Some(p) = pair() else { return };
    let m = Margin { s: 64.0, m_arc: 0.3, m_cos: 0.2 };
    // Two chunks of 700 and 300 scored columns; targets in either, or on another rank (−1).
    let target = [5, 699, 700, 999, -1, 42];
    let chunks = [700, 300].map(|w| p.cpu.rand_uniform(&[6, w], -1.0, 1.0, w as u64).unwrap());
    p.same("margin chunks", K, &chunks, |be, t| {
        let stats =
            [be.full(&[6], f32::NEG_INFINITY).unwrap(), be.full(&[6], 0.0).unwrap(), be.full(&[6], 0.0).unwrap()];
        be.margin_chunk_stats(&t[0], &target, 0, m, [&stats[0], &stats[1], &stats[2]]).unwrap();
        be.margin_chunk_stats(&t[1], &target, 700, m, [&stats[0], &stats[1], &stats[2]]).unwrap();
        // Another rank's maxima, a little above ours.
        let gmax = be.add(&stats[0], &be.full(&[6], 0.5).unwrap()).unwrap();
        let gsum = be.margin_softmax_total(&stats[0], &stats[1], &gmax).unwrap();
        let loss = be.margin_softmax_loss(&gmax, &gsum, &stats[2]).unwrap();
        let g0 = be.margin_chunk_grad(&t[0], &target, 0, m, [&gmax, &gsum]).unwrap();
        let g1 = be.margin_chunk_grad(&t[1], &target, 700, m, [&gmax, &gsum]).unwrap();
        let dst = be.full(&[9, 700], 0.0).unwrap();
        be.copy_rows_(&dst, &[8, 0, 3, 4, 2, 7], &t[0]).unwrap();
        let [mx, sm, tl] = stats;
        vec![mx, sm, tl, gsum, loss, g0, g1, dst]
    });
}

#[test]
fn sgd_gated_clipped_and_skipped() {
    let Some(p) = pair() else { return };
    // Three triples, each of one shape (param, grad, buffer), the shapes differing.
    let ts: Vec<Tensor> = (0..9).map(|i| rnd(&[3 + i / 3, 5], i as u64)).collect();
    let h = SgdHyper { lr: 0.1, momentum: 0.9, weight_decay: 5e-4 };
    p.same("sgd", K, &ts, |be, t| {
        // Σg² of 40, scale 4 undone, clipped to norm 1; then a NaN gate: no change at all.
        let (sumsq, scale) = (be.full(&[], 40.0).unwrap(), be.full(&[], 4.0).unwrap());
        let gate = be.clip_gate(&sumsq, Some(&scale), 1.0).unwrap();
        let nan = be.clip_gate(&be.full(&[], f32::INFINITY).unwrap(), Some(&scale), 1.0).unwrap();
        // GradScaler's rule: a clean step with interval 1 doubles the scale, an overflow halves it.
        let (good, overflows) = (be.full(&[], 0.0).unwrap(), be.full(&[], 0.0).unwrap());
        let rule = ScaleRule { growth: 2.0, backoff: 0.5, interval: 1 };
        be.loss_scale_update(&gate, [&scale, &good, &overflows], rule).unwrap();
        be.loss_scale_update(&nan, [&scale, &good, &overflows], rule).unwrap();
        be.loss_scale_update(&nan, [&scale, &good, &overflows], rule).unwrap();
        be.sgd_step_all(&[[&t[0], &t[1], &t[2]]], h, None).unwrap();
        be.sgd_step_all(&[[&t[3], &t[4], &t[5]], [&t[6], &t[7], &t[8]]], h, Some(&gate)).unwrap();
        be.sgd_step_all(&[[&t[3], &t[4], &t[5]]], h, Some(&nan)).unwrap();
        vec![
            gate,
            scale,
            good,
            overflows,
            t[0].clone(),
            t[2].clone(),
            t[3].clone(),
            t[5].clone(),
            t[6].clone(),
            t[8].clone(),
        ]
    });
}

#[test]
fn memory_is_cached_and_counted() {
    let Some(p) = pair() else { return };
    let before = p.gpu.device_memory().unwrap();
    for _ in 0..3 {
        let t = p.gpu.full(&[1 << 20], 1.0).unwrap();
        assert!(p.gpu.device_memory().unwrap().live_bytes >= before.live_bytes + (4 << 20));
        drop(t);
    }
    let after = p.gpu.device_memory().unwrap();
    assert_eq!(after.live_bytes, before.live_bytes, "live bytes back to where they were");
    assert!(after.cached_bytes >= 4 << 20, "the freed block is kept for reuse");
    p.gpu.empty_cache();
    assert_eq!(p.gpu.device_memory().unwrap().cached_bytes, 0);
}

#[test]
fn nccl_on_one_rank_keeps_sums_and_rounds_f16_buckets() {
    let Some(p) = pair() else { return };
    // The emulated device stands in for NCCL on one rank.
    if !maskfr_cuda::emulated::enabled() && or_skip(maskfr_cuda::require("nccl"), &[REQUIRE_GPU]).is_none() {
        return;
    }
    let id = maskfr_cuda::nccl::unique_id().unwrap();
    let mut comm = maskfr_cuda::nccl::NcclComm::new(0, 0, 1, id, std::time::Duration::from_secs(20)).unwrap();
    let (a, b) = (rnd(&[37, 5], 1), rnd(&[1000], 2));
    let (ga, gb) = (p.gpu.upload(&a).unwrap(), p.gpu.upload(&b).unwrap());
    for op in [Reduction::Sum, Reduction::Mean, Reduction::Max] {
        comm.all_reduce(&[&ga, &gb], op, false).unwrap();
        comm.wait().unwrap();
        assert_eq!(ga.values().unwrap(), a.to_vec(), "one rank's {op:?} is itself");
        assert_eq!(gb.values().unwrap(), b.to_vec());
    }
    let gathered = comm.all_gather(&ga).unwrap();
    let scattered = comm.reduce_scatter(&ga).unwrap();
    comm.wait().unwrap();
    assert_eq!((gathered.shape(), gathered.values().unwrap()), (a.shape(), a.to_vec()), "one rank's all-gather");
    assert_eq!((scattered.shape(), scattered.values().unwrap()), (a.shape(), a.to_vec()), "one rank's reduce-scatter");
    comm.broadcast(&[&ga], 0).unwrap();
    comm.wait().unwrap();
    assert_eq!(ga.values().unwrap(), a.to_vec());
    comm.all_reduce(&[&gb], Reduction::Sum, true).unwrap();
    comm.wait().unwrap();
    assert_eq!(gb.values().unwrap(), b.cast(DType::F16).to_vec(), "an f16 bucket comes back rounded");
}

/// The launch shapes an R240 batch of 128 produces, the first and last stages at full size:
/// per-channel blocks looping over 128 samples, elementwise grids with more elements than
/// one grid's 65 535 × 256 threads (grid-stride loops going round), per-row blocks over 128
/// rows of odd widths, the classifier's chunks.
#[test]
fn launch_shapes_of_an_r240_batch_of_128() {
    let Some(p) = pair() else { return };
    // A first-stage activation: 25.7M elements, past one grid.
    let (x, y) = (rnd(&[128, 64, 56, 56], 1), rnd(&[128, 64, 56, 56], 2));
    p.same("add past one grid", K, &[x, y, rnd(&[64], 3)], |be, t| {
        vec![be.add(&t[0], &t[1]).unwrap(), be.prelu(&t[0], &t[2]).unwrap(), be.sum(&t[1]).unwrap()]
    });
    // The last stage (512 channels, 7²) and the first (64 channels, 56²).
    for shape in [[128, 512, 7, 7], [128, 64, 56, 56]] {
        let c = shape[1];
        let (x, gy) = (rnd(&shape, 4), rnd(&shape, 5));
        let (w, b, rv) = (rnd(&[c], 6), rnd(&[c], 7), p.cpu.rand_uniform(&[c], 0.5, 2.0, 8).unwrap());
        p.same(&format!("batch norm {shape:?}"), K, &[x, w, b, rnd(&[c], 9), rv, gy], |be, t| {
            let o = be.batch_norm(&t[0], &t[1], &t[2], &t[3], &t[4], true, 0.1, 1e-5).unwrap();
            let (gx, gw, gb) = be.batch_norm_backward(&t[5], &t[0], &t[1], &o.mean, &o.invstd, true).unwrap();
            let (px, pa) = be.prelu_backward(&t[5], &t[0], &t[1]).unwrap();
            vec![o.y, o.mean, o.invstd, gx, gw, gb, px, pa, be.channel_sum(&t[5]).unwrap()]
        });
    }
    // Embeddings and the classifier: 128 rows, widths off the block size.
    p.same("rows of 128", K, &[rnd(&[128, 512], 10), rnd(&[128, 512], 11), rnd(&[128, 1001], 12)], |be, t| {
        let labels: Vec<i32> = (0..128).map(|i| (i * 7) % 1001).collect();
        let (loss, logp) = be.cross_entropy(&t[2], &labels).unwrap();
        vec![be.l2_normalize(&t[0], 1e-12).unwrap(), be.l2_normalize_backward(&t[1], &t[0], 1e-12).unwrap(), loss, logp]
    });
    let m = Margin { s: 64.0, m_arc: 0.0, m_cos: 0.4 };
    let target: Vec<i32> = (0..128).map(|i| if i % 5 == 0 { -1 } else { (i * 131) % 12_000 }).collect();
    let chunks = [8191, 3809].map(|w| p.cpu.rand_uniform(&[128, w], -1.0, 1.0, w as u64).unwrap());
    p.same("classifier chunks of 128 rows", K, &chunks, |be, t| {
        let st =
            [be.full(&[128], f32::NEG_INFINITY).unwrap(), be.full(&[128], 0.0).unwrap(), be.full(&[128], 0.0).unwrap()];
        be.margin_chunk_stats(&t[0], &target, 0, m, [&st[0], &st[1], &st[2]]).unwrap();
        be.margin_chunk_stats(&t[1], &target, 8191, m, [&st[0], &st[1], &st[2]]).unwrap();
        let gsum = be.margin_softmax_total(&st[0], &st[1], &st[0]).unwrap();
        let loss = be.margin_softmax_loss(&st[0], &gsum, &st[2]).unwrap();
        let g = be.margin_chunk_grad(&t[1], &target, 8191, m, [&st[0], &gsum]).unwrap();
        let [mx, sm, tl] = st;
        vec![mx, sm, tl, loss, g]
    });
}
