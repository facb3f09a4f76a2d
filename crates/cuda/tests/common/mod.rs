//! What a GPU test (or the gpu-ops bench) does when the GPU or a library it needs does not
//! load: it is skipped, saying why, where none is expected (CI, laptops); with
//! MASKFR_REQUIRE_GPU=1 (bench/gpu/run.sh on a lent GPU) it fails instead, naming what did
//! not load, so a GPU run cannot pass by skipping everything.

use std::fmt::Display;

/// Set to 1 where every GPU test must run.
pub const REQUIRE_GPU: &str = "MASKFR_REQUIRE_GPU";

/// `needed`'s value, or None (the caller returns: skipped) after printing the error; a
/// panic naming the error instead when one of `required_by` is set to 1.
#[track_caller]
pub fn or_skip<T, E: Display>(needed: Result<T, E>, required_by: &[&str]) -> Option<T> {
    let e = match needed {
        Ok(v) => return Some(v),
        Err(e) => e,
    };
    if let Some(var) = required_by.iter().find(|v| std::env::var(v).as_deref() == Ok("1")) {
        panic!("{var}=1 and this test cannot run: {e}");
    }
    eprintln!("skipped: {e}");
    None
}
