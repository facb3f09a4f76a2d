//! What this machine offers the CUDA backend: which libraries load (and from which file
//! name, or every name tried), the driver version and the GPUs. `maskfr doctor` prints it;
//! [`require`] turns a missing library into an error that says what to do.

use crate::nvrtc::{choose_target, nvrtc_version, supported_archs};
use crate::{Error, Result};
use cudarc::driver::result as drv;

/// The libraries the backend uses, with what for.
pub const LIBRARIES: [(&str, &str); 5] = [
    ("cuda", "driver"),
    ("nvrtc", "kernel compiler"),
    ("cublas", "matrix products"),
    ("cudnn", "convolutions"),
    ("nccl", "collectives between GPUs; one GPU runs without it"),
];

#[derive(Debug, Clone)]
pub struct LibraryProbe {
    pub name: &'static str,
    pub purpose: &'static str,
    /// The file name that loaded, if one did.
    pub loaded: Option<String>,
    /// Every file name tried (the dynamic loader searches `LD_LIBRARY_PATH` and the system).
    pub searched: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Gpu {
    pub index: usize,
    pub name: String,
    pub memory_bytes: usize,
    /// Compute capability as one number (90 for 9.0).
    pub arch: i32,
    /// What its kernels compile to ([`crate::nvrtc::Target`]), or why nothing fits.
    pub target: std::result::Result<String, String>,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub libraries: Vec<LibraryProbe>,
    /// The driver's CUDA version, e.g. 13000 for 13.0.
    pub driver_version: Option<i32>,
    pub gpus: Vec<Gpu>,
    /// Why no GPU is usable, when none is.
    pub problem: Option<String>,
}

fn probe_library(name: &'static str, purpose: &'static str) -> LibraryProbe {
    let mut searched = cudarc::get_lib_name_candidates(name);
    let mut seen = std::collections::HashSet::new();
    searched.retain(|c| seen.insert(c.clone()));
    // SAFETY: loading a CUDA library runs its initialisers, which are sound to run.
    let loaded = searched.iter().find(|c| unsafe { libloading::Library::new(c.as_str()) }.is_ok()).cloned();
    LibraryProbe { name, purpose, loaded, searched }
}

/// The CUDA version the driver supports (13000 for 13.0), when the driver library loads.
pub fn driver_version() -> Option<i32> {
    require("cuda").ok()?;
    let mut version = 0;
    // SAFETY: the driver library is loaded; the pointer is to a live local.
    let ok =
        unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut version) } == cudarc::driver::sys::CUresult::CUDA_SUCCESS;
    ok.then_some(version)
}

/// The libraries, the driver and the GPUs.
pub fn probe() -> Report {
    if crate::emulated::enabled() {
        return crate::emulated::report();
    }
    let libraries: Vec<LibraryProbe> = LIBRARIES.iter().map(|&(n, p)| probe_library(n, p)).collect();
    let mut report = Report { libraries, driver_version: None, gpus: Vec::new(), problem: None };
    if report.libraries[0].loaded.is_none() {
        report.problem = Some("no CUDA driver library (libcuda): no NVIDIA driver on this machine".into());
        return report;
    }
    report.driver_version = driver_version();
    if let Err(e) = drv::init() {
        report.problem = Some(format!("the CUDA driver did not initialise ({e:?}): no usable GPU"));
        return report;
    }
    let count = drv::device::get_count().unwrap_or(0);
    for index in 0..count.max(0) as usize {
        let Ok(dev) = drv::device::get(index as i32) else { continue };
        let name = drv::device::get_name(dev).unwrap_or_else(|_| "unknown".into());
        // SAFETY: `dev` is a device handle the driver just returned.
        let memory_bytes = unsafe { drv::device::total_mem(dev) }.unwrap_or(0);
        use cudarc::driver::sys::CUdevice_attribute as A;
        // SAFETY: as above.
        let cc = |a| unsafe { drv::device::get_attribute(dev, a) }.unwrap_or(0);
        let arch = cc(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR) * 10
            + cc(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        let target = (|| {
            let driver =
                report.driver_version.ok_or_else(|| Error("cuda: the driver's version query failed".into()))?;
            choose_target(driver, nvrtc_version()?, arch, &supported_archs()?)
        })()
        .map(|t| t.to_string())
        .map_err(|e| e.0);
        report.gpus.push(Gpu { index, name, memory_bytes, arch, target });
    }
    if report.gpus.is_empty() {
        report.problem = Some("the CUDA driver reports no GPU".into());
    }
    report
}

/// Ok when library `name` (one of [`LIBRARIES`]) loads; else an error naming it and where
/// it was looked for.
pub fn require(name: &str) -> Result<()> {
    let (n, purpose) = LIBRARIES
        .iter()
        .copied()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| Error(format!("cuda: unknown library '{name}'")))?;
    let p = probe_library(n, purpose);
    match p.loaded {
        Some(_) => Ok(()),
        None => Err(Error(format!(
            "cuda: lib{n} ({purpose}) not found; tried {} through the dynamic loader (LD_LIBRARY_PATH, then the system). \
             pip's nvidia-* wheels put CUDA 13 libraries in site-packages/nvidia/cu13/lib: add that folder to LD_LIBRARY_PATH",
            p.searched.join(", ")
        ))),
    }
}

/// The version library `name` (one of [`LIBRARIES`]) reports about itself, e.g. "9.10.2"
/// for cuDNN; an error naming the library when it does not load.
pub fn library_version(name: &str) -> Result<String> {
    require(name)?;
    let dotted = |major: i32, minor: i32, patch: i32| format!("{major}.{minor}.{patch}");
    match name {
        "cuda" => driver_version().map(|v| format!("CUDA {}.{}", v / 1000, (v % 1000) / 10)),
        "nvrtc" => return nvrtc_version().map(|(a, b)| format!("{a}.{b}")),
        "cudnn" => {
            // SAFETY: the library loads (checked above); the call takes no arguments.
            let v = unsafe { cudarc::cudnn::sys::cudnnGetVersion() } as i32;
            Some(dotted(v / 10000, (v % 10000) / 100, v % 100))
        }
        "cublas" => {
            use cudarc::cublas::sys::{cublasGetProperty, libraryPropertyType as P};
            let mut v = [0i32; 3];
            // SAFETY: the library loads; each call writes one int.
            let ok = [P::MAJOR_VERSION, P::MINOR_VERSION, P::PATCH_LEVEL]
                .into_iter()
                .zip(v.iter_mut())
                .all(|(p, out)| unsafe { cublasGetProperty(p, out) }.result().is_ok());
            ok.then(|| dotted(v[0], v[1], v[2]))
        }
        "nccl" => {
            let mut v = 0i32;
            // SAFETY: the library loads; the call writes one int.
            let ok = unsafe { cudarc::nccl::sys::ncclGetVersion(&mut v) }.result().is_ok();
            ok.then(|| dotted(v / 10000, (v % 10000) / 100, v % 100))
        }
        _ => None,
    }
    .ok_or_else(|| Error(format!("cuda: lib{name} loads but its version query failed")))
}
