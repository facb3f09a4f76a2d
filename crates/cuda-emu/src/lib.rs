//! maskfr-cuda-emu: an emulated CUDA device, so the CUDA backend's own code (its kernels,
//! launch configurations, allocator, dispatch) runs and is compared with the CPU in CI
//! without a GPU. The kernels are the `.cu` files NVRTC compiles, built as C++ by build.rs
//! with a stand-in header (src/emu.h); [`launch`] takes what `cuLaunchKernel` takes (grid,
//! block, dynamic shared bytes, an array of pointers to the arguments) and checks the
//! arguments' sizes against the kernel's signature. Device memory is host memory in guarded
//! mappings (src/runtime.cpp says how faults are caught and reported).

use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr};
use std::sync::OnceLock;

#[repr(C)]
struct Kernel {
    module: *const c_char,
    name: *const c_char,
    trampoline: unsafe extern "C" fn(*mut *mut c_void),
    barriers: i32,
    params: i32,
    sizes: *const u32,
    decls: *const *const c_char,
}

extern "C" {
    static emu_kernels: [*const Kernel; 0];
    static emu_kernel_count: std::ffi::c_ulong;
    fn emu_alloc(bytes: usize) -> *mut c_void;
    fn emu_free(p: *mut c_void);
    fn emu_set_reverse(on: i32);
    fn emu_mark(p: *mut c_void, used: usize) -> i32;
    fn emu_check_range(p: usize, bytes: usize, err: *mut c_char, n: usize) -> i32;
    fn emu_launch(
        k: *const Kernel,
        grid: *const u32,
        block: *const u32,
        shared: usize,
        params: *mut *mut c_void,
        err: *mut c_char,
        n: usize,
    ) -> i32;
}

struct Entry(*const Kernel);
// SAFETY: the table is immutable static data.
unsafe impl Send for Entry {}
unsafe impl Sync for Entry {}

fn text(p: *const c_char) -> &'static str {
    // SAFETY: build.rs emits NUL-terminated string literals.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("?")
}

fn table() -> &'static HashMap<(&'static str, &'static str), Entry> {
    static TABLE: OnceLock<HashMap<(&'static str, &'static str), Entry>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // SAFETY: build.rs defines `emu_kernel_count` entries.
        let all = unsafe { std::slice::from_raw_parts(emu_kernels.as_ptr(), emu_kernel_count as usize) };
        all.iter()
            .map(|&k| {
                // SAFETY: every entry points at a static Kernel.
                let r = unsafe { &*k };
                ((text(r.module), text(r.name)), Entry(k))
            })
            .collect()
    })
}

/// Every kernel compiled in, as (module, name).
pub fn kernels() -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<_> = table().keys().copied().collect();
    v.sort();
    v
}

/// The declared parameters of `module`'s kernel `name` (e.g. `const float* x`).
pub fn signature(module: &str, name: &str) -> Option<Vec<&'static str>> {
    let k = table().get(&(module, name))?;
    // SAFETY: `params` declarations, as build.rs emitted them.
    let r = unsafe { &*k.0 };
    Some((0..r.params as usize).map(|i| text(unsafe { *r.decls.add(i) })).collect())
}

/// Runs each block's threads in reverse order from now on (or in order again): between two
/// barriers, a thread then runs before the lower-numbered ones, so a read of their shared
/// memory slots without a barrier sees poison. MASKFR_CUDA_EMULATE_ORDER=reverse sets it
/// for the whole process.
pub fn set_reverse(on: bool) {
    // SAFETY: an atomic store.
    unsafe { emu_set_reverse(i32::from(on)) }
}

/// Guarded device memory of `bytes` (poisoned: 0xFF bytes), or None when mapping fails.
pub fn alloc(bytes: usize) -> Option<u64> {
    // SAFETY: plain allocation.
    let p = unsafe { emu_alloc(bytes) };
    (!p.is_null()).then_some(p as u64)
}

/// Frees what [`alloc`] returned.
pub fn free(ptr: u64) {
    // SAFETY: an unknown pointer is ignored by the runtime.
    unsafe { emu_free(ptr as *mut c_void) }
}

/// The allocation at `ptr` now holds a tensor of `used` bytes: everything is poisoned again
/// and a kernel that writes past `used` fails its launch.
pub fn mark(ptr: u64, used: usize) -> Result<(), String> {
    // SAFETY: the runtime checks that `ptr` is an allocation and `used` fits.
    match unsafe { emu_mark(ptr as *mut c_void, used) } {
        0 => Ok(()),
        _ => Err(format!("emulated device: {used} bytes do not fit the block at {ptr:#x}")),
    }
}

fn message(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Ok when `[ptr, ptr + bytes)` lies inside one device allocation, else what is wrong.
pub fn check_range(ptr: u64, bytes: usize) -> Result<(), String> {
    let mut buf = [0u8; 256];
    // SAFETY: the runtime writes a NUL-terminated message of at most `buf.len()` bytes.
    match unsafe { emu_check_range(ptr as usize, bytes, buf.as_mut_ptr().cast(), buf.len()) } {
        0 => Ok(()),
        _ => Err(message(&buf)),
    }
}

/// Runs `module`'s kernel `name` over `grid` × `block` threads with `shared` bytes of
/// dynamic shared memory; `params[i]` points at argument i and `sizes[i]` is its size in
/// bytes, which must be the size the kernel declares. Returns when every block has run.
///
/// # Safety
/// Every pointer argument must address memory the kernel may use as the caller intends
/// (the emulator catches accesses outside device allocations, not every misuse inside one).
pub unsafe fn launch(
    module: &str,
    name: &str,
    grid: (u32, u32, u32),
    block: (u32, u32, u32),
    shared: u32,
    params: &[*mut c_void],
    sizes: &[usize],
) -> Result<(), String> {
    let k =
        table().get(&(module, name)).ok_or_else(|| format!("emulated device: no kernel {name} in module {module}"))?;
    // SAFETY: a static table entry.
    let r = unsafe { &*k.0 };
    let decls = signature(module, name).unwrap_or_default();
    if params.len() != r.params as usize || sizes.len() != params.len() {
        return Err(format!("{name}: launched with {} arguments, its signature has {}", params.len(), r.params));
    }
    for (i, &given) in sizes.iter().enumerate() {
        // SAFETY: `params` sizes, as build.rs emitted them.
        let want = unsafe { *r.sizes.add(i) } as usize;
        if given != want {
            return Err(format!("{name}: argument {i} is {given} bytes, but `{}` is {want}", decls[i]));
        }
    }
    let (g, b) = ([grid.0, grid.1, grid.2], [block.0, block.1, block.2]);
    let mut ptrs = params.to_vec();
    let mut buf = vec![0u8; 1024];
    // SAFETY: the caller vouches for the arguments; sizes match the signature (checked).
    let rc = unsafe {
        emu_launch(k.0, g.as_ptr(), b.as_ptr(), shared as usize, ptrs.as_mut_ptr(), buf.as_mut_ptr().cast(), buf.len())
    };
    match rc {
        0 => Ok(()),
        _ => Err(format!("emulated device: {}", message(&buf))),
    }
}
