//! N-API bindings: `#[napi]` wrappers over the maskfr crates (core, cuda, parallel, io,
//! masks, eval) that convert arguments and results, and nothing else. Every function catches
//! panics (`catch_unwind`) so a Rust bug becomes a JS Error, never an abort.

// napi-derive registers exports only outside `cfg(test)`; there the wrappers look unused.
#![cfg_attr(test, allow(dead_code))]

mod align;
mod data;
mod eval;
mod loader;
mod masks;
mod ops;
mod parallel;
mod photometric;
mod system;
mod tensor;
mod torch;

/// `cuda:N` tensors dispatch to maskfr-cuda (which loads nothing until one is made).
#[napi_derive::module_init]
fn init() {
    maskfr_cuda::install();
}

/// The one way a Rust error crosses into JS: an `Error` with its message, which already
/// names the op, file or rank, and code `GenericFailure` (a Rust error may be a bad argument,
/// a corrupt file or a dead rank alike; the binding's own argument checks say `InvalidArg`).
fn js<T>(r: maskfr_core::Result<T>) -> napi::Result<T> {
    r.map_err(|e| napi::Error::from_reason(e.to_string()))
}
