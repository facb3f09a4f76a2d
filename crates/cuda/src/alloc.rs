//! The caching allocator: a freed block goes back to a free list for its size class and the
//! next request of that class takes it, so a training step stops calling cudaMalloc once
//! the first step has warmed the cache (cudaMalloc/cudaFree synchronise the device and cost
//! tens of microseconds each). All work runs on one stream, so a block freed after its last
//! kernel was queued can be handed to the next kernel in queue order without waiting.
//! Generic over the raw memory so the bookkeeping is tested with host memory.

use crate::Result;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where blocks come from: cudaMalloc on a GPU, the heap in the tests.
pub trait RawMemory: Send + Sync {
    fn alloc(&self, bytes: usize) -> Result<u64>;
    fn free(&self, ptr: u64);
    /// Waits until nothing queued still uses memory about to be freed.
    fn quiesce(&self) {}
}

const SMALL: usize = 1 << 20;
const SMALL_ROUND: usize = 512;
const LARGE_ROUND: usize = 2 << 20;

/// The size class of a request: small requests round up to 512 B, large ones to 2 MiB, so
/// activations whose sizes differ by a few rows share blocks.
pub fn size_class(bytes: usize) -> usize {
    let b = bytes.max(1);
    let round = if b <= SMALL { SMALL_ROUND } else { LARGE_ROUND };
    b.div_ceil(round) * round
}

#[derive(Default)]
struct State {
    free: HashMap<usize, Vec<u64>>,
    live: u64,
    peak: u64,
    cached: u64,
    raw_allocs: u64,
}

pub struct Caching<R: RawMemory> {
    raw: R,
    state: Mutex<State>,
}

/// Figures for `memoryStats()`: bytes handed out, their peak, bytes kept for reuse, and how
/// many raw allocations were made in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocStats {
    pub live: u64,
    pub peak: u64,
    pub cached: u64,
    pub raw_allocs: u64,
}

/// A block handed out; it goes back to the cache when dropped.
pub struct Block<R: RawMemory> {
    pub ptr: u64,
    pub bytes: usize,
    owner: Arc<Caching<R>>,
}

impl<R: RawMemory> std::fmt::Debug for Block<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Block({:#x}, {} bytes)", self.ptr, self.bytes)
    }
}

impl<R: RawMemory> Drop for Block<R> {
    fn drop(&mut self) {
        let mut s = self.owner.lock();
        s.live -= self.bytes as u64;
        s.cached += self.bytes as u64;
        s.free.entry(self.bytes).or_default().push(self.ptr);
    }
}

impl<R: RawMemory> Caching<R> {
    pub fn new(raw: R) -> Arc<Self> {
        Arc::new(Caching { raw, state: Mutex::new(State::default()) })
    }

    pub fn raw(&self) -> &R {
        &self.raw
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A block of at least `bytes`: a cached one of the same class, else a new one; when
    /// the device is out of memory the cache is released and the request tried once more.
    pub fn take(self: &Arc<Self>, bytes: usize) -> Result<Block<R>> {
        let class = size_class(bytes);
        let cached = {
            let mut s = self.lock();
            let ptr = s.free.get_mut(&class).and_then(|v| v.pop());
            if ptr.is_some() {
                s.cached -= class as u64;
            }
            ptr
        };
        let ptr = match cached {
            Some(p) => p,
            None => match self.raw.alloc(class) {
                Ok(p) => p,
                Err(_) => {
                    self.empty();
                    self.raw.alloc(class).map_err(|e| {
                        let s = self.stats();
                        crate::Error(format!(
                            "out of device memory: {e} ({} MiB requested, {} MiB live, peak {} MiB)",
                            class >> 20,
                            s.live >> 20,
                            s.peak >> 20
                        ))
                    })?
                }
            },
        };
        let mut s = self.lock();
        if cached.is_none() {
            s.raw_allocs += 1;
        }
        s.live += class as u64;
        s.peak = s.peak.max(s.live);
        Ok(Block { ptr, bytes: class, owner: self.clone() })
    }

    /// Returns every cached block to the raw memory.
    pub fn empty(&self) {
        let free = {
            let mut s = self.lock();
            s.cached = 0;
            std::mem::take(&mut s.free)
        };
        if free.values().any(|v| !v.is_empty()) {
            self.raw.quiesce();
        }
        free.into_values().flatten().for_each(|p| self.raw.free(p));
    }

    pub fn stats(&self) -> AllocStats {
        let s = self.lock();
        AllocStats { live: s.live, peak: s.peak, cached: s.cached, raw_allocs: s.raw_allocs }
    }

    pub fn reset_peak(&self) {
        let mut s = self.lock();
        s.peak = s.live;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Heap memory with a capacity, so the out-of-memory path runs too.
    struct Heap {
        capacity: usize,
        blocks: Mutex<HashMap<u64, Box<[u8]>>>,
    }

    impl RawMemory for Heap {
        fn alloc(&self, bytes: usize) -> Result<u64> {
            let mut blocks = self.blocks.lock().unwrap();
            if blocks.values().map(|b| b.len()).sum::<usize>() + bytes > self.capacity {
                return Err(crate::Error("heap full".into()));
            }
            let b = vec![0u8; bytes].into_boxed_slice();
            let ptr = b.as_ptr() as u64;
            blocks.insert(ptr, b);
            Ok(ptr)
        }
        fn free(&self, ptr: u64) {
            assert!(self.blocks.lock().unwrap().remove(&ptr).is_some(), "freed an unknown block");
        }
    }

    fn heap(capacity: usize) -> Arc<Caching<Heap>> {
        Caching::new(Heap { capacity, blocks: Mutex::new(HashMap::new()) })
    }

    #[test]
    fn classes_round_small_and_large_requests() {
        assert_eq!(size_class(1), 512);
        assert_eq!(size_class(513), 1024);
        assert_eq!(size_class(SMALL), SMALL);
        assert_eq!(size_class(SMALL + 1), LARGE_ROUND);
        assert_eq!(size_class(5 << 20), 6 << 20);
    }

    #[test]
    fn freed_blocks_are_reused_without_new_allocations() {
        let a = heap(1 << 30);
        for _ in 0..3 {
            let x = a.take(1000).unwrap();
            let y = a.take(3 << 20).unwrap();
            assert_ne!(x.ptr, y.ptr);
            assert_eq!(a.stats().live, 1024 + (4 << 20));
        }
        let s = a.stats();
        assert_eq!((s.raw_allocs, s.live, s.cached, s.peak), (2, 0, 1024 + (4 << 20), 1024 + (4 << 20)));
        a.empty();
        assert_eq!(a.stats().cached, 0);
    }

    #[test]
    fn out_of_memory_releases_the_cache_then_reports_sizes() {
        let a = heap(8 << 20);
        drop(a.take(6 << 20).unwrap());
        // 4 MiB does not fit beside the cached 6 MiB: the cache is released and it fits.
        let b = a.take(4 << 20).unwrap();
        assert_eq!(a.stats().cached, 0);
        let e = a.take(6 << 20).unwrap_err();
        assert!(e.0.contains("out of device memory") && e.0.contains("6 MiB requested"), "{e}");
        drop(b);
    }
}
