//! Kernel compilation: NVRTC turns a module's source into a cubin for the GPU's own
//! architecture (or PTX the driver JIT-compiles, see [`choose_target`]) once per process and
//! target (cached); a source error comes back with NVRTC's log.

use crate::{probe::require, Error, Result};
use cudarc::nvrtc::{result as rtc, sys};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::{Mutex, OnceLock};

use cudarc::nvrtc::Ptx;

/// A compiled kernel module.
#[derive(Clone, Debug)]
pub enum Image {
    Ptx(String),
    Cubin(Vec<u8>),
}

impl Image {
    /// The form the driver loads (`cuModuleLoadData` takes either).
    pub(crate) fn module(&self) -> Ptx {
        match self {
            Image::Ptx(text) => Ptx::from_src(text.clone()),
            Image::Cubin(bytes) => Ptx::from_binary(bytes.clone()),
        }
    }
}

/// The oldest architecture the kernels are written for (bf16 arithmetic, sm_80: A100, H100,
/// H200); also the virtual architecture of PTX builds.
pub const MIN_ARCH: i32 = 80;

/// What a kernel module is compiled to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// PTX for `compute_80`, JIT-compiled by the driver: only a driver at least as new as
    /// NVRTC can read it (else `CUDA_ERROR_UNSUPPORTED_PTX_VERSION` at the first launch).
    Ptx,
    /// Machine code for `sm_<arch>` (e.g. 90): no JIT, and CUDA's minor-version compatibility
    /// lets a newer NVRTC's cubin run under an older driver of the same major version.
    Cubin(i32),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Ptx => write!(f, "PTX for compute_{MIN_ARCH} (JIT-compiled by the driver)"),
            Target::Cubin(a) => write!(f, "cubin for sm_{a}"),
        }
    }
}

/// The CUDA version in `cuDriverGetVersion`'s form (13000 for 13.0) as "13.0".
fn version(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

/// The target for a GPU of compute capability `arch` (e.g. 90 for 9.0) under a driver of
/// CUDA `driver` (e.g. 13000), with NVRTC `nvrtc` = (major, minor) that can compile for the
/// `supported` real architectures. Cubin for the GPU's own architecture when NVRTC knows it;
/// else PTX, which the driver JIT-compiles only when it is at least as new as NVRTC. Every
/// mismatch is an error that names the versions and what to install, instead of a launch
/// failure that would look like a kernel bug.
pub fn choose_target(driver: i32, nvrtc: (i32, i32), arch: i32, supported: &[i32]) -> Result<Target> {
    let compiler = nvrtc.0 * 1000 + nvrtc.1 * 10;
    // pip's NVRTC for CUDA 12 is nvidia-cuda-nvrtc-cu12; from 13 on the plain name carries
    // the newest and a version pin picks the major (nvidia-cuda-nvrtc-cu13 is an empty placeholder).
    let wheel = match driver / 1000 {
        m if m <= 12 => format!("nvidia-cuda-nvrtc-cu{m}"),
        m => format!("'nvidia-cuda-nvrtc=={m}.*'"),
    };
    let fix = format!(
        "install the NVRTC of the driver's CUDA ({}), e.g. `pip install {wheel}`, or update the NVIDIA driver",
        version(driver)
    );
    if arch < MIN_ARCH {
        return Err(Error(format!(
            "cuda: this GPU is sm_{arch}; maskfr's kernels need sm_{MIN_ARCH} or newer (A100, H100, H200)"
        )));
    }
    if nvrtc.0 > driver / 1000 {
        return Err(Error(format!(
            "cuda: NVRTC {}.{} compiles for CUDA {}.x but the driver supports CUDA {} only: {fix}",
            nvrtc.0,
            nvrtc.1,
            nvrtc.0,
            version(driver)
        )));
    }
    if supported.contains(&arch) {
        return Ok(Target::Cubin(arch));
    }
    if driver >= compiler {
        return Ok(Target::Ptx);
    }
    Err(Error(format!(
        "cuda: NVRTC {}.{} cannot compile for sm_{arch}, and PTX it writes needs a driver for CUDA ≥ {} (this one: {}): {fix}",
        nvrtc.0,
        nvrtc.1,
        version(compiler),
        version(driver)
    )))
}

/// NVRTC's (major, minor) version.
pub fn nvrtc_version() -> Result<(i32, i32)> {
    require("nvrtc")?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the library is present (checked above); both pointers are to live locals.
    let r = unsafe { sys::nvrtcVersion(&mut major, &mut minor) };
    r.result().map(|_| (major, minor)).map_err(|e| Error(format!("nvrtc: version query failed: {e:?}")))
}

/// The real architectures (e.g. 80, 90) NVRTC can compile cubins for.
pub fn supported_archs() -> Result<Vec<i32>> {
    require("nvrtc")?;
    let mut n = 0;
    // SAFETY: the library is present; `n` is a live local and the vector holds `n` ints.
    let archs = unsafe {
        sys::nvrtcGetNumSupportedArchs(&mut n).result().and_then(|_| {
            let mut v = vec![0; n.max(0) as usize];
            sys::nvrtcGetSupportedArchs(v.as_mut_ptr()).result().map(|_| v)
        })
    };
    archs.map_err(|e| Error(format!("nvrtc: supported architectures query failed: {e:?}")))
}

static CACHE: OnceLock<Mutex<HashMap<(String, Target), Image>>> = OnceLock::new();

/// Module `name` (one of [`crate::KERNELS`]) for `target`, compiled on first use.
pub fn compile(name: &str, target: Target) -> Result<Image> {
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let key = (name.to_string(), target);
    if let Some(p) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(p.clone());
    }
    require("nvrtc")?;
    let src = crate::source(name).ok_or_else(|| Error(format!("nvrtc: no kernel module '{name}'")))?;
    let image = build(name, &src, target)?;
    cache.lock().unwrap_or_else(|p| p.into_inner()).insert(key, image.clone());
    Ok(image)
}

/// One NVRTC program: created, compiled for `target`, its PTX or cubin read back, destroyed.
fn build(name: &str, src: &str, target: Target) -> Result<Image> {
    let fail = |what: &str, e: rtc::NvrtcError| Error(format!("nvrtc: {name}.cu: {what}: {e:?}"));
    let (src, file) = (
        CString::new(src).map_err(|_| Error(format!("nvrtc: {name}.cu holds a NUL byte")))?,
        CString::new(format!("{name}.cu")).expect("no NUL in a module name"),
    );
    let arch = match target {
        Target::Ptx => format!("--gpu-architecture=compute_{MIN_ARCH}"),
        Target::Cubin(a) => format!("--gpu-architecture=sm_{a}"),
    };
    let prog = rtc::create_program(&src, Some(&file)).map_err(|e| fail("create", e))?;
    // SAFETY: `prog` is live until destroyed at the end; sizes come from NVRTC itself.
    unsafe {
        let compiled = rtc::compile_program(prog, &[arch.as_str(), "--std=c++17"]);
        let out = match compiled {
            Err(e) => {
                let log = rtc::get_program_log(prog).map(|l| CStr::from_ptr(l.as_ptr()).to_string_lossy().into_owned());
                Err(match log {
                    Ok(log) => Error(format!("nvrtc: {name}.cu does not compile ({e:?}):\n{log}")),
                    Err(_) => fail("compile", e),
                })
            }
            Ok(()) => match target {
                Target::Ptx => rtc::get_ptx(prog)
                    .map(|p| Image::Ptx(CStr::from_ptr(p.as_ptr()).to_string_lossy().into_owned()))
                    .map_err(|e| fail("read PTX", e)),
                Target::Cubin(_) => {
                    let mut size = 0usize;
                    sys::nvrtcGetCUBINSize(prog, &mut size)
                        .result()
                        .and_then(|_| {
                            let mut v = vec![0u8; size];
                            sys::nvrtcGetCUBIN(prog, v.as_mut_ptr().cast()).result().map(|_| Image::Cubin(v))
                        })
                        .map_err(|e| fail("read cubin", e))
                }
            },
        };
        let _ = rtc::destroy_program(prog);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARCHS: [i32; 4] = [80, 86, 89, 90];

    #[test]
    fn cubin_for_a_known_gpu_even_under_an_older_driver_of_the_same_major() {
        assert_eq!(choose_target(13000, (13, 0), 90, &ARCHS).unwrap(), Target::Cubin(90));
        assert_eq!(choose_target(13000, (13, 1), 90, &ARCHS).unwrap(), Target::Cubin(90));
    }

    #[test]
    fn ptx_for_a_gpu_nvrtc_does_not_know_only_under_a_driver_as_new() {
        assert_eq!(choose_target(13010, (13, 0), 100, &ARCHS).unwrap(), Target::Ptx);
        let e = choose_target(13000, (13, 1), 100, &ARCHS).unwrap_err().0;
        assert!(e.contains("NVRTC 13.1 cannot compile for sm_100, and PTX it writes needs a driver for CUDA ≥ 13.1 (this one: 13.0)"), "{e}");
        assert!(e.contains("pip install 'nvidia-cuda-nvrtc==13.*'"), "{e}");
    }

    #[test]
    fn a_newer_major_or_an_old_gpu_is_refused_plainly() {
        let e = choose_target(12040, (13, 0), 90, &ARCHS).unwrap_err().0;
        assert!(e.contains("NVRTC 13.0 compiles for CUDA 13.x but the driver supports CUDA 12.4 only"), "{e}");
        assert!(e.contains("nvidia-cuda-nvrtc-cu12"), "{e}");
        let e = choose_target(13000, (13, 0), 75, &ARCHS).unwrap_err().0;
        assert!(e.contains("this GPU is sm_75; maskfr's kernels need sm_80 or newer"), "{e}");
    }
}
