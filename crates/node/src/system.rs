use maskfr_core::peak;
use napi_derive::napi;

#[napi(object)]
pub struct FmaPeak {
    pub gflops: f64,
    pub threads: u32,
    pub isa: String,
}

/// Measures the f32 FMA peak of this machine on all compute threads (takes ~1 s).
#[napi]
pub fn measure_fma_peak() -> FmaPeak {
    let p = peak::measure();
    FmaPeak { gflops: p.gflops, threads: p.threads as u32, isa: p.isa.to_string() }
}

/// Threads the CPU kernels use (`RAYON_NUM_THREADS`, else one per core).
#[napi]
pub fn compute_threads() -> u32 {
    rayon::current_num_threads() as u32
}

/// Panics inside the binding's `catch_unwind` guard: tests use it to prove that a Rust panic
/// reaches JS as an Error instead of aborting the process.
#[napi(catch_unwind)]
pub fn panic_guard_self_test() {
    panic!("maskfr panic guard self-test");
}

#[napi(object)]
pub struct CudaLibrary {
    pub name: String,
    pub purpose: String,
    /// The file name that loaded, if one did.
    pub loaded: Option<String>,
    pub searched: Vec<String>,
}

#[napi(object)]
pub struct CudaGpu {
    pub index: u32,
    pub name: String,
    pub memory_bytes: f64,
    /// Compute capability as one number (90 for 9.0).
    pub arch: i32,
    /// What its kernels compile to, e.g. "cubin for sm_90".
    pub target: Option<String>,
    /// Why no compile target fits this GPU, driver and NVRTC (then `target` is absent).
    pub target_problem: Option<String>,
}

#[napi(object)]
pub struct CudaReport {
    pub libraries: Vec<CudaLibrary>,
    pub driver_version: Option<i32>,
    pub gpus: Vec<CudaGpu>,
    pub problem: Option<String>,
    /// NVRTC's version when it loads.
    pub nvrtc: Option<String>,
}

/// What the CUDA backend would find here: libraries, driver, GPUs (never throws for a
/// missing piece: it is reported).
#[napi(catch_unwind)]
pub fn cuda_probe() -> CudaReport {
    let r = maskfr_cuda::probe();
    CudaReport {
        libraries: r
            .libraries
            .into_iter()
            .map(|l| CudaLibrary {
                name: l.name.into(),
                purpose: l.purpose.into(),
                loaded: l.loaded,
                searched: l.searched,
            })
            .collect(),
        driver_version: r.driver_version,
        gpus: r
            .gpus
            .into_iter()
            .map(|g| CudaGpu {
                index: g.index as u32,
                name: g.name,
                memory_bytes: g.memory_bytes as f64,
                arch: g.arch,
                target: g.target.clone().ok(),
                target_problem: g.target.err(),
            })
            .collect(),
        problem: r.problem,
        nvrtc: maskfr_cuda::nvrtc_version().ok().map(|(a, b)| format!("{a}.{b}")),
    }
}

/// When f32 convolutions and matrix products may use TF32 tensor cores on a GPU.
#[napi(object)]
pub struct Tf32Policy {
    pub convolutions: bool,
    pub matmul: bool,
}

/// Sets the TF32 policy for every later GPU op (PyTorch's defaults: convolutions on, matmul off).
#[napi]
pub fn set_tf32(p: Tf32Policy) {
    maskfr_cuda::set_tf32(maskfr_cuda::Tf32 { conv: p.convolutions, matmul: p.matmul });
}

/// The TF32 policy in force.
#[napi]
pub fn tf32() -> Tf32Policy {
    let t = maskfr_cuda::tf32();
    Tf32Policy { convolutions: t.conv, matmul: t.matmul }
}
