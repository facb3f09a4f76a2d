//! Reuse of large f32 buffers. A training step frees and allocates the same activation sizes
//! every iteration, and a fresh large allocation comes from the OS, paying a page fault per
//! 4 KiB on first touch (measured: 13% of a CPU training step of the demo model). Freed
//! buffers of at least 1 MiB wait here, by length, and are handed out again, zeroed unless
//! the caller overwrites every element. The pool never holds more than the peak of live
//! tensor bytes; `empty()` returns it to the OS.

use crate::memory;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const MIN_BYTES: usize = 1 << 20;

static POOL: Mutex<Option<HashMap<usize, Vec<Vec<f32>>>>> = Mutex::new(None);
static CACHED: AtomicU64 = AtomicU64::new(0);

/// `n` zeros, from the pool when a buffer of that length waits there.
pub(crate) fn zeros(n: usize) -> Vec<f32> {
    match reuse(n) {
        Some(mut v) => {
            v.fill(0.0);
            v
        }
        None => vec![0.0; n],
    }
}

/// `n` values to be overwritten: a pooled buffer as it was left (zeroing megabytes only to
/// overwrite them cost a conv's output 8% of its time), else fresh zeros.
pub(crate) fn scratch(n: usize) -> Vec<f32> {
    reuse(n).unwrap_or_else(|| vec![0.0; n])
}

fn reuse(n: usize) -> Option<Vec<f32>> {
    if 4 * n < MIN_BYTES {
        return None;
    }
    let v = POOL.lock().unwrap_or_else(|p| p.into_inner()).as_mut().and_then(|m| m.get_mut(&n)?.pop())?;
    CACHED.fetch_sub(4 * n as u64, Ordering::Relaxed);
    Some(v)
}

/// Keeps `v` for reuse when it is large and the pool has room (else frees it).
pub(crate) fn give(v: Vec<f32>) {
    let bytes = 4 * v.len();
    if bytes < MIN_BYTES || v.len() != v.capacity() {
        return;
    }
    if CACHED.load(Ordering::Relaxed) + bytes as u64 > memory::stats().peak_bytes {
        return;
    }
    CACHED.fetch_add(bytes as u64, Ordering::Relaxed);
    POOL.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(HashMap::new).entry(v.len()).or_default().push(v);
}

/// Bytes waiting in the pool.
pub fn cached_bytes() -> u64 {
    CACHED.load(Ordering::Relaxed)
}

/// Frees every pooled buffer.
pub fn empty() {
    if let Some(m) = POOL.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        m.clear();
    }
    CACHED.store(0, Ordering::Relaxed);
}
