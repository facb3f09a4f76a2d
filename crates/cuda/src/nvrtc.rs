//! Kernel compilation: NVRTC turns a module's source into PTX once per process (cached);
//! a source error comes back with NVRTC's log.

use crate::{probe::require, Error, Result};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

pub use cudarc::nvrtc::Ptx;

/// The virtual architecture compiled for: PTX the driver JIT-compiles for the GPU at hand
/// (sm_80 and newer: A100, H100, H200).
const ARCH: &str = "compute_80";

static CACHE: OnceLock<Mutex<HashMap<String, Ptx>>> = OnceLock::new();

/// NVRTC's (major, minor) version.
pub fn nvrtc_version() -> Result<(i32, i32)> {
    require("nvrtc")?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the library is present (checked above); both pointers are to live locals.
    let r = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    r.result().map(|_| (major, minor)).map_err(|e| Error(format!("nvrtc: version query failed: {e:?}")))
}

/// Module `name` (one of [`crate::KERNELS`]) as PTX, compiled on first use.
pub fn compile(name: &str) -> Result<Ptx> {
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(p) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
        return Ok(p.clone());
    }
    require("nvrtc")?;
    let src = crate::source(name).ok_or_else(|| Error(format!("nvrtc: no kernel module '{name}'")))?;
    let opts = cudarc::nvrtc::CompileOptions {
        arch: Some(ARCH),
        name: Some(format!("{name}.cu")),
        options: vec!["--std=c++17".into()],
        ..Default::default()
    };
    let ptx = cudarc::nvrtc::compile_ptx_with_opts(src, opts).map_err(|e| match e {
        cudarc::nvrtc::CompileError::CompileError { log, .. } => {
            Error(format!("nvrtc: {name}.cu does not compile:\n{}", log.to_string_lossy()))
        }
        other => Error(format!("nvrtc: {name}.cu: {other:?}")),
    })?;
    cache.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), ptx.clone());
    Ok(ptx)
}
