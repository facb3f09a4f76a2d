//! The `gpu-ops` suite, our side: conv2d forward / backward-data / backward-weight on
//! IResNet-50's shapes at batch 128 in f32 and f16, square GEMMs, and a 25 MiB gradient
//! bucket's NCCL all-reduce on one rank (f32 and f16-compressed), through the CUDA backend. One JSON line per case on stdout; bench/gpu/torch_ops.py times the same cases
//! with PyTorch and bench/gpu/report.py joins them (bench/gpu/run.sh runs all three).
//! Each timed call ends with a device synchronise, on both sides.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{or_skip, REQUIRE_GPU};
use maskfr_core::{Backend, ConvParams, DType, Device, Tensor};
use std::time::Instant;

const BATCH: usize = 128;

/// (name, cin, cout, hw, k, stride): the shapes of bench/suites/conv.ts.
const SHAPES: [(&str, usize, usize, usize, usize, usize); 12] = [
    ("3x3 64→64 @56²", 64, 64, 56, 3, 1),
    ("3x3 128→128 @28²", 128, 128, 28, 3, 1),
    ("3x3 256→256 @14²", 256, 256, 14, 3, 1),
    ("3x3 512→512 @7²", 512, 512, 7, 3, 1),
    ("3x3 s2 64→64 @112²", 64, 64, 112, 3, 2),
    ("3x3 s2 64→128 @56²", 64, 128, 56, 3, 2),
    ("3x3 s2 128→256 @28²", 128, 256, 28, 3, 2),
    ("3x3 s2 256→512 @14²", 256, 512, 14, 3, 2),
    ("1x1 s2 64→64 @112²", 64, 64, 112, 1, 2),
    ("1x1 s2 64→128 @56²", 64, 128, 56, 1, 2),
    ("1x1 s2 128→256 @28²", 128, 256, 28, 1, 2),
    ("1x1 s2 256→512 @14²", 256, 512, 14, 1, 2),
];

/// Median seconds per call: 3 warm calls (the first measures cuDNN's algorithms), then at
/// least 10 calls and 0.2 s.
fn time(be: &dyn Backend, mut once: impl FnMut() -> Tensor) -> f64 {
    for _ in 0..3 {
        drop(once());
    }
    be.synchronize().unwrap();
    let (mut v, start) = (Vec::new(), Instant::now());
    while v.len() < 10 || start.elapsed().as_secs_f64() < 0.2 {
        let t = Instant::now();
        let y = once();
        be.synchronize().unwrap();
        v.push(t.elapsed().as_secs_f64());
        drop(y);
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    maskfr_cuda::install();
    let Some(be) = or_skip(maskfr_core::backend::device_backend("gpu-ops", Device::Cuda(0)), &[REQUIRE_GPU]) else {
        return;
    };
    let cpu = maskfr_core::backend::device_backend("gpu-ops", Device::Cpu).unwrap();
    let dev = |shape: &[usize], seed: u64, dtype: DType| {
        let t = cpu.randn(shape, 0.0, 1.0, seed, 0).unwrap();
        be.cast(&be.upload(&t).unwrap(), dtype).unwrap()
    };
    for dtype in [DType::F32, DType::F16] {
        for (name, cin, cout, hw, k, s) in SHAPES {
            let p = ConvParams { stride: [s, s], pad: [k / 2, k / 2] };
            let (xs, ws) = ([BATCH, cin, hw, hw], [cout, cin, k, k]);
            let (x, w) = (dev(&xs, 1, dtype), dev(&ws, 2, dtype));
            let gy = be.conv2d(&x, &w, None, p).unwrap();
            let oh = gy.shape()[2];
            let flops = 2.0 * (BATCH * cout * cin * k * k * oh * oh) as f64;
            for dir in ["fwd", "bwd_data", "bwd_weight"] {
                let secs = time(be, || match dir {
                    "fwd" => be.conv2d(&x, &w, None, p).unwrap(),
                    "bwd_data" => be.conv2d_backward_input(&gy, &w, &xs, p).unwrap(),
                    _ => be.conv2d_backward_weight(&gy, &x, &ws, p).unwrap(),
                });
                println!(
                    r#"{{"kind":"conv","dir":"{dir}","name":"{name}","dtype":"{}","x":{xs:?},"w":{ws:?},"stride":{s},"pad":{},"flops":{flops},"seconds":{secs}}}"#,
                    dtype.name(),
                    k / 2
                );
            }
        }
        for n in [4096usize, 8192] {
            let (a, b) = (dev(&[n, n], 3, dtype), dev(&[n, n], 4, dtype));
            let secs = time(be, || be.matmul(&a, &b, false, false).unwrap());
            let flops = 2.0 * (n * n * n) as f64;
            println!(
                r#"{{"kind":"gemm","name":"gemm {n}³","dtype":"{}","n":{n},"flops":{flops},"seconds":{secs}}}"#,
                dtype.name()
            );
        }
    }
    bucket(be, &dev);
}

/// One rank's NCCL all-reduce of a 25 MiB bucket (bytes per second; on one rank NCCL only
/// copies, so this is its fixed cost, to which a multi-GPU run adds its links).
fn bucket(be: &dyn Backend, dev: &dyn Fn(&[usize], u64, DType) -> Tensor) {
    let Some(id) = or_skip(maskfr_cuda::nccl::unique_id(), &[REQUIRE_GPU]) else { return };
    let mut comm = maskfr_cuda::nccl::NcclComm::new(0, 0, 1, id, std::time::Duration::from_secs(30)).unwrap();
    let n = 25 << 18; // 25 MiB of f32
    let g = dev(&[n], 5, DType::F32);
    for f16 in [false, true] {
        let secs = time(be, || {
            comm.all_reduce(&[&g], maskfr_cuda::nccl::Reduction::Mean, f16).unwrap();
            comm.wait().unwrap();
            g.clone()
        });
        let (bytes, as16) = ((n * 4) as f64, if f16 { " as f16" } else { "" });
        println!(
            r#"{{"kind":"allreduce","name":"nccl all-reduce 25 MiB bucket{as16}","dtype":"f32","n":{n},"f16":{f16},"bytes":{bytes},"seconds":{secs}}}"#
        );
    }
}
