//! Process-wide accounting of tensor handles and storage bytes, read by `memoryStats()`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

static LIVE_TENSORS: AtomicI64 = AtomicI64::new(0);
static LIVE_BYTES: AtomicU64 = AtomicU64::new(0);
static PEAK_BYTES: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStats {
    pub live_tensors: i64,
    pub live_bytes: u64,
    pub peak_bytes: u64,
}

pub fn stats() -> MemoryStats {
    MemoryStats {
        live_tensors: LIVE_TENSORS.load(Ordering::Relaxed),
        live_bytes: LIVE_BYTES.load(Ordering::Relaxed),
        peak_bytes: PEAK_BYTES.load(Ordering::Relaxed),
    }
}

/// Restarts peak tracking from the current live bytes (e.g. before measuring one step).
pub fn reset_peak() {
    PEAK_BYTES.store(LIVE_BYTES.load(Ordering::Relaxed), Ordering::Relaxed);
}

pub(crate) fn alloc(bytes: usize) {
    let live = LIVE_BYTES.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64;
    PEAK_BYTES.fetch_max(live, Ordering::Relaxed);
}

pub(crate) fn free(bytes: usize) {
    LIVE_BYTES.fetch_sub(bytes as u64, Ordering::Relaxed);
}

/// One live tensor handle; cloning a handle counts another, dropping it counts one less.
#[derive(Debug)]
pub(crate) struct HandleToken;

impl HandleToken {
    pub(crate) fn new() -> Self {
        LIVE_TENSORS.fetch_add(1, Ordering::Relaxed);
        HandleToken
    }
}

impl Clone for HandleToken {
    fn clone(&self) -> Self {
        HandleToken::new()
    }
}

impl Drop for HandleToken {
    fn drop(&mut self) {
        LIVE_TENSORS.fetch_sub(1, Ordering::Relaxed);
    }
}
