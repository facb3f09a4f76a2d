//! The NVRTC kernels on a GPU against their CPU references in maskfr-core. Skipped, with
//! the reason, where there is no GPU or no NVRTC (CI); bench/gpu/run.sh runs them on a lent one.

use cudarc::driver::{CudaContext, CudaStream, LaunchConfig, PushKernelArg};
use maskfr_core::kernels::norm::{batch_stats, BnGeom};
use maskfr_core::kernels::pointwise::dropout;
use maskfr_core::kernels::reduce::l2_normalize;
use maskfr_core::random::normal;
use std::sync::Arc;

fn stream() -> Option<Arc<CudaStream>> {
    let report = maskfr_cuda::probe();
    if let Some(why) = report.problem.or_else(|| maskfr_cuda::require("nvrtc").err().map(|e| e.0)) {
        eprintln!("skipped: {why}");
        return None;
    }
    Some(CudaContext::new(0).expect("a GPU was reported").default_stream())
}

fn randn(n: usize, seed: u64) -> Vec<f32> {
    (0..n).map(|i| normal(seed, i as u64) as f32 * 2.0 + 0.5).collect()
}

fn close(gpu: &[f32], cpu: &[f32], tol: f32, what: &str) {
    let scale = cpu.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
    let err = gpu.iter().zip(cpu).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        gpu.len() == cpu.len() && err <= tol * scale && gpu.iter().all(|v| v.is_finite()),
        "{what}: max error {err:e} of scale {scale}"
    );
}

#[test]
fn kernels_match_their_cpu_references() {
    let Some(s) = stream() else { return };
    let module = |name: &str| s.context().load_module(maskfr_cuda::compile(name).unwrap()).unwrap();
    let (n, c, hw) = (6usize, 5usize, 49usize);
    let x = randn(n * c * hw, 1);
    let dx = s.clone_htod(&x).unwrap();

    // add
    let (a, b) = (randn(10_000, 2), randn(10_000, 3));
    let (da, db) = (s.clone_htod(&a).unwrap(), s.clone_htod(&b).unwrap());
    let mut dy = s.alloc_zeros::<f32>(a.len()).unwrap();
    let add = module("elementwise").load_function("add_f32").unwrap();
    let len = a.len() as i64;
    unsafe {
        s.launch_builder(&add)
            .arg(&da)
            .arg(&db)
            .arg(&mut dy)
            .arg(&len)
            .launch(LaunchConfig::for_num_elems(a.len() as u32))
    }
    .unwrap();
    let sum: Vec<f32> = a.iter().zip(&b).map(|(p, q)| p + q).collect();
    assert_eq!(s.clone_dtoh(&dy).unwrap(), sum, "add: exact");

    // batch statistics (one block per channel, 256 threads, double sums)
    let (mut mean, mut var) = (s.alloc_zeros::<f32>(c).unwrap(), s.alloc_zeros::<f32>(c).unwrap());
    let stats = module("batchnorm").load_function("bn_stats_f32").unwrap();
    let cfg = LaunchConfig { grid_dim: (c as u32, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 256 * 8 };
    let (ni, ci, si) = (n as i32, c as i32, hw as i64);
    unsafe { s.launch_builder(&stats).arg(&dx).arg(&mut mean).arg(&mut var).arg(&ni).arg(&ci).arg(&si).launch(cfg) }
        .unwrap();
    let (m_cpu, v_cpu) = batch_stats(&BnGeom::new("bn", &[n, c, 7, 7], c).unwrap(), &x);
    close(&s.clone_dtoh(&mean).unwrap(), &m_cpu, 1e-5, "bn mean");
    close(&s.clone_dtoh(&var).unwrap(), &v_cpu, 1e-5, "bn var");

    // L2 normalisation of rows of 49
    let mut dn = s.alloc_zeros::<f32>(x.len()).unwrap();
    let l2 = module("l2norm").load_function("l2_normalize_f32").unwrap();
    let (d, eps) = (hw as i32, 1e-12f32);
    let cfg = LaunchConfig { grid_dim: ((n * c) as u32, 1, 1), block_dim: (64, 1, 1), shared_mem_bytes: 64 * 8 };
    unsafe { s.launch_builder(&l2).arg(&dx).arg(&mut dn).arg(&d).arg(&eps).launch(cfg) }.unwrap();
    let mut n_cpu = vec![0f32; x.len()];
    l2_normalize(hw, 1e-12, &x, &mut n_cpu);
    close(&s.clone_dtoh(&dn).unwrap(), &n_cpu, 1e-6, "l2 normalize");

    // dropout: the same counter-based stream as the CPU, so the same elements drop
    let (mut dd, mut mask) = (s.alloc_zeros::<f32>(x.len()).unwrap(), s.alloc_zeros::<f32>(x.len()).unwrap());
    let drop = module("dropout").load_function("dropout_f32").unwrap();
    let (seed, p, total) = (77u64, 0.3f64, x.len() as i64);
    unsafe {
        s.launch_builder(&drop)
            .arg(&dx)
            .arg(&mut dd)
            .arg(&mut mask)
            .arg(&seed)
            .arg(&p)
            .arg(&total)
            .launch(LaunchConfig::for_num_elems(x.len() as u32))
    }
    .unwrap();
    let mut d_cpu = vec![0f32; x.len()];
    dropout(seed, p, &x, &mut d_cpu);
    assert_eq!(s.clone_dtoh(&dd).unwrap(), d_cpu, "dropout: the same mask, exactly");
}
