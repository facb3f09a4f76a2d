//! The first thing bench/gpu/run.sh runs on a lent GPU (within 90 s): the basics, each on a
//! line of its own — the device, the driver, every library with the version it reports, one
//! convolution, one GEMM, one NCCL all-reduce on one rank, one kernel of each module against
//! the CPU — then a summary; it fails, listing what failed, if anything did, and run.sh
//! stops there. Where no GPU is expected (CI without MASKFR_REQUIRE_GPU=1) it only prints.
//! On the emulated device (MASKFR_CUDA_EMULATE=1) the library lines say so.

mod common;

use common::{or_skip, REQUIRE_GPU};
use maskfr_core::backend::device_backend;
use maskfr_core::{Backend, ConvParams, Device, Margin, SgdHyper, Tensor};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

struct Checks {
    failed: Vec<String>,
    passed: usize,
}

impl Checks {
    /// Runs `what`, printing `ok`/`FAIL` with its detail or error (a panic counts as a failure).
    fn check(&mut self, what: &str, f: impl FnOnce() -> Result<String, String>) {
        let start = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
            Err(p
                .downcast_ref::<String>()
                .cloned()
                .or(p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default())
        });
        let ms = start.elapsed().as_millis();
        match r {
            Ok(detail) => {
                self.passed += 1;
                println!("ok    {what}: {detail} ({ms} ms)");
            }
            Err(e) => {
                println!("FAIL  {what}: {e} ({ms} ms)");
                self.failed.push(format!("{what}: {e}"));
            }
        }
    }
}

/// An op on a backend's inputs, returning what to compare.
type Op = dyn Fn(&dyn Backend, &[Tensor]) -> Vec<Tensor>;

fn rnd(shape: &[usize], seed: u64) -> Tensor {
    device_backend("first contact", Device::Cpu).unwrap().randn(shape, 0.0, 1.0, seed, 0).unwrap()
}

/// `op` on the CPU and on cuda:0 (inputs uploaded), every output within `tol`·max|cpu|.
fn against_cpu(
    gpu: &dyn Backend,
    tol: f32,
    inputs: &[Tensor],
    op: impl Fn(&dyn Backend, &[Tensor]) -> Vec<Tensor>,
) -> Result<String, String> {
    let cpu = device_backend("first contact", Device::Cpu).map_err(|e| e.to_string())?;
    let up = inputs.iter().map(|t| gpu.upload(t)).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
    let (want, got) = (op(cpu, inputs), op(gpu, &up));
    let mut worst = 0f32;
    for (i, (c, g)) in want.iter().zip(&got).enumerate() {
        let (c, g) = (c.to_vec(), g.values().map_err(|e| e.to_string())?);
        let scale = c.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
        let err =
            c.iter().zip(&g).fold(0f32, |m, (a, b)| if b.is_finite() { m.max((a - b).abs()) } else { f32::INFINITY });
        if err > tol * scale {
            return Err(format!("output {i}: max error {err:e} against scale {scale} (tolerance {tol:e})"));
        }
        worst = worst.max(err / scale);
    }
    Ok(format!("max relative error {worst:.1e}"))
}

#[test]
fn basics() {
    maskfr_cuda::install();
    let mut c = Checks { failed: Vec::new(), passed: 0 };
    let report = maskfr_cuda::probe();
    c.check("device", || match (&report.problem, report.gpus.first()) {
        (None, Some(g)) => {
            Ok(format!("{} ({} GiB, sm_{}), kernels: {:?}", g.name, g.memory_bytes >> 30, g.arch, g.target))
        }
        (p, _) => Err(p.clone().unwrap_or_else(|| "no GPU".into())),
    });
    let emulated = maskfr_cuda::emulated::enabled();
    for l in &report.libraries {
        c.check(&format!("lib{} ({})", l.name, l.purpose), || match (&l.loaded, emulated) {
            (Some(how), true) => Ok(how.clone()),
            _ => maskfr_cuda::library_version(l.name)
                .map(|v| format!("{v} from {}", l.loaded.clone().unwrap_or_default()))
                .map_err(|e| e.0),
        });
    }
    let gpu = device_backend("first contact", Device::Cuda(0));
    c.check("open cuda:0", || {
        gpu.as_ref()
            .map(|_| if emulated { "the emulated device" } else { "context, stream, cuBLAS and cuDNN handles" }.into())
            .map_err(|e| e.to_string())
    });
    if let Ok(g) = gpu {
        let prm = ConvParams { stride: [2, 2], pad: [1, 1] };
        c.check("cuDNN convolution (forward, 3×3 stride 2, 4×16×14²)", || {
            against_cpu(g, 5e-3, &[rnd(&[4, 16, 14, 14], 1), rnd(&[32, 16, 3, 3], 2)], |b, t| {
                vec![b.conv2d(&t[0], &t[1], None, prm).unwrap()]
            })
        });
        c.check("cuBLAS GEMM (64×300 · 300×48)", || {
            against_cpu(g, 1e-4, &[rnd(&[64, 300], 3), rnd(&[300, 48], 4)], |b, t| {
                vec![b.matmul(&t[0], &t[1], false, false).unwrap()]
            })
        });
        c.check("NCCL all-reduce on one rank", || {
            let id = maskfr_cuda::nccl::unique_id().map_err(|e| e.0)?;
            let mut comm =
                maskfr_cuda::nccl::NcclComm::new(0, 0, 1, id, std::time::Duration::from_secs(20)).map_err(|e| e.0)?;
            let x = rnd(&[1000], 5);
            let gx = g.upload(&x).map_err(|e| e.to_string())?;
            comm.all_reduce(&[&gx], maskfr_cuda::nccl::Reduction::Sum, false).map_err(|e| e.0)?;
            comm.wait().map_err(|e| e.0)?;
            (gx.values().map_err(|e| e.to_string())? == x.to_vec())
                .then(|| "one rank's sum is itself".into())
                .ok_or("values changed".into())
        });
        let (x, v) = (rnd(&[3, 5, 7, 7], 6), rnd(&[5], 7));
        let labels = [1, 0, 4];
        let kernels: [(&str, Box<Op>); 10] = [
            ("elementwise", Box::new(|b, t| vec![b.add(&t[0], &t[0]).unwrap()])),
            (
                "batchnorm",
                Box::new(|b, t| {
                    vec![
                        b.batch_norm(&t[0], &t[1], &t[1], &t[1], &b.full(&[5], 1.0).unwrap(), true, 0.1, 1e-5)
                            .unwrap()
                            .y,
                    ]
                }),
            ),
            ("prelu", Box::new(|b, t| vec![b.prelu(&t[0], &t[1]).unwrap()])),
            ("reduce", Box::new(|b, t| vec![b.sum(&t[0]).unwrap(), b.channel_sum(&t[0]).unwrap()])),
            ("l2norm", Box::new(|b, t| vec![b.l2_normalize(&t[2], 1e-12).unwrap()])),
            ("random", Box::new(|b, _| vec![b.randn(&[999], 0.0, 1.0, 3, 0).unwrap()])),
            ("rows", Box::new(|b, t| vec![b.index_rows(&t[2], &[2, 0]).unwrap()])),
            ("loss", Box::new(|b, t| vec![b.log_softmax(&t[2]).unwrap()])),
            (
                "margin",
                Box::new(move |b, t| {
                    vec![b
                        .margin_logits(
                            &b.scale(&t[2], 0.1).unwrap(),
                            &labels,
                            Margin { s: 64.0, m_arc: 0.0, m_cos: 0.4 },
                        )
                        .unwrap()]
                }),
            ),
            (
                "sgd",
                Box::new(|b, t| {
                    b.sgd_step_all(
                        &[[&t[2], &t[3], &t[4]]],
                        SgdHyper { lr: 0.1, momentum: 0.9, weight_decay: 5e-4 },
                        None,
                    )
                    .unwrap();
                    vec![t[2].clone(), t[4].clone()]
                }),
            ),
        ];
        for (module, op) in kernels {
            let inputs = [x.clone(), v.clone(), rnd(&[3, 5], 8), rnd(&[3, 5], 9), rnd(&[3, 5], 10)];
            c.check(&format!("kernel module {module} against the CPU"), || {
                against_cpu(g, 1e-5, &inputs, |b, t| op(b, t))
            });
        }
    }
    let total = c.passed + c.failed.len();
    println!("first contact: {} of {total} checks passed", c.passed);
    if !c.failed.is_empty() {
        // One line per failure (the full errors are above).
        let short: Vec<String> = c.failed.iter().map(|f| f.chars().take(140).collect()).collect();
        let summary = format!("first contact: {} of {total} checks failed:\n  {}", c.failed.len(), short.join("\n  "));
        or_skip::<(), _>(Err(summary), &[REQUIRE_GPU]);
    }
}
