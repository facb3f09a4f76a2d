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
