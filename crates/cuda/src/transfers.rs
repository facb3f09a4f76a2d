//! Copies between host and GPU: pinned staging, a copy stream for large uploads so they
//! overlap the kernels queued before them, and a pinned ring for the small ones.

use crate::alloc::{Block, RawMemory};
use crate::gpu::{driver, Gpu, Memory};
use crate::Result;
use cudarc::driver::{result as drv, CudaContext, CudaEvent, CudaStream};
use std::sync::{Arc, Mutex};

/// Page-locked host memory for copies (pageable copies go through a driver bounce buffer
/// and wait for the stream). Large uploads cycle through `slots` on the copy stream, each
/// refilled only once the copy that last read it is done (its event); small ones take
/// `small`. Neither waits for the kernels queued before it, so the host keeps queueing the
/// step. Downloads use their own buffer and wait (their data is needed now).
struct Staging {
    slots: Vec<Slot>,
    next: usize,
    readback: *mut u8,
    small: Arena,
}

/// Pinned memory for small uploads (labels, row indices: several per step), handed out in
/// order around a ring of four quarters. Entering a quarter waits for the event recorded
/// when it was last left, a whole ring of uploads ago: long done, so the host does not wait
/// for the kernels queued before it (as it would cycling through a few slots).
struct Arena {
    base: *mut u8,
    /// The quarter in use and the end of what it has handed out.
    quarter: usize,
    at: usize,
    left: [CudaEvent; 4],
}

const QUARTER: usize = 4 << 20;

struct Slot {
    ptr: *mut u8,
    /// Recorded after the copy that last read the slot (made at open: recording can then
    /// not fail half-way through an upload and leave a slot unguarded).
    done: CudaEvent,
}

impl Arena {
    /// Room for `n` bytes (at most a quarter), 256-aligned: its offset in the ring. Moving on
    /// to the next quarter records the one left on `stream` and waits for the one entered.
    fn take(&mut self, n: usize, stream: &CudaStream) -> Result<usize> {
        let mut start = self.at.div_ceil(256) * 256;
        if start + n > QUARTER {
            driver("event", self.left[self.quarter].record(stream))?;
            self.quarter = (self.quarter + 1) % 4;
            driver("waiting for pinned memory", self.left[self.quarter].synchronize())?;
            start = 0;
        }
        self.at = start + n;
        Ok(self.quarter * QUARTER + start)
    }
}

// SAFETY: the buffers are only touched under the `Gpu::staging` mutex.
unsafe impl Send for Staging {}

const SLOTS: usize = 4;
const STAGING_BYTES: usize = 8 << 20;

/// Uploads this large (input batches) take the copy stream.
const OVERLAP_BYTES: usize = 1 << 20;

/// Large uploads travel on a copy stream of their own, so they overlap the kernels queued
/// before them (the host runs a step ahead of the GPU): pinned slot → (copy stream) a landing
/// block → (compute stream, once the copy's event has passed: a wait on the GPU, not the
/// host) the destination. Landing blocks belong to this path, never to the allocator: a
/// block the allocator hands out may still be read by queued kernels, which only the compute
/// stream's order protects. Two landings alternate, each reused after the compute stream's
/// copy out of it (its `consumed` event); they are not counted in the allocator's figures.
struct Landings {
    copies: Arc<CudaStream>,
    slots: [Landing; 2],
    next: usize,
}

struct Landing {
    ptr: u64,
    bytes: usize,
    landed: CudaEvent,
    consumed: CudaEvent,
}

pub(crate) struct Transfers {
    staging: Mutex<Staging>,
    landings: Mutex<Landings>,
}

impl Transfers {
    pub(crate) fn open(ctx: &Arc<CudaContext>) -> Result<Transfers> {
        // SAFETY: the context is current (CudaContext::new binds it).
        let pinned = || driver("cuMemHostAlloc", unsafe { drv::malloc_host(STAGING_BYTES, 0) }).map(|p| p as *mut u8);
        let slot = || -> Result<Slot> { Ok(Slot { ptr: pinned()?, done: driver("event", ctx.new_event(None))? }) };
        let slots = (0..SLOTS).map(|_| slot()).collect::<Result<_>>()?;
        // SAFETY: as `pinned`.
        let ring = driver("cuMemHostAlloc", unsafe { drv::malloc_host(4 * QUARTER, 0) })? as *mut u8;
        let event = || driver("event", ctx.new_event(None));
        let small = Arena { base: ring, quarter: 0, at: 0, left: [event()?, event()?, event()?, event()?] };
        let staging = Staging { slots, next: 0, readback: pinned()?, small };
        let landing = || -> Result<Landing> {
            let event = || driver("event", ctx.new_event(None));
            Ok(Landing { ptr: 0, bytes: 0, landed: event()?, consumed: event()? })
        };
        let copies = driver("copy stream", ctx.new_stream())?;
        let landings = Landings { copies, slots: [landing()?, landing()?], next: 0 };
        Ok(Transfers { staging: Mutex::new(staging), landings: Mutex::new(landings) })
    }
}

impl Gpu {
    /// Queues the copy of `src` to device address `dst` (returns once `src` is in pinned
    /// memory, not when the copy is done). Large copies overlap the queued kernels (see
    /// `Landings`); small ones (labels, indices) queue on the compute stream.
    pub fn write(&self, dst: u64, src: &[u8]) -> Result<()> {
        if self.is_emulated() {
            return crate::emulated::write(dst, src);
        }
        self.bind()?;
        let (transfers, stream) = (&self.cuda()?.transfers, self.stream()?);
        if src.len() < OVERLAP_BYTES {
            let mut st = transfers.staging.lock().unwrap_or_else(|p| p.into_inner());
            let at = st.small.take(src.len(), stream)?;
            // SAFETY: `at..at + len` lies in the ring (a quarter holds OVERLAP_BYTES) and no
            // queued copy reads it any more (its quarter's event has completed).
            return unsafe {
                let p = st.small.base.add(at);
                std::ptr::copy_nonoverlapping(src.as_ptr(), p, src.len());
                let pinned = std::slice::from_raw_parts(p, src.len());
                driver("copy to device", drv::memcpy_htod_async(dst, pinned, stream.cu_stream()))
            };
        }
        let mut all = transfers.landings.lock().unwrap_or_else(|p| p.into_inner());
        let at = all.next;
        all.next = 1 - at;
        let copies = all.copies.clone();
        let l = &mut all.slots[at];
        if l.bytes < src.len() {
            // Growing (the first batches): the old landing is freed once nothing reads it.
            driver("waiting for a landing", l.consumed.synchronize())?;
            if l.ptr != 0 {
                self.memory.raw().free(l.ptr);
                l.ptr = 0;
            }
            l.ptr = self.memory.raw().alloc(src.len())?;
            l.bytes = src.len();
        }
        driver("copy stream wait", copies.wait(&l.consumed))?;
        self.stage(l.ptr, src, &copies)?;
        driver("event", l.landed.record(&copies))?;
        driver("stream wait", stream.wait(&l.landed))?;
        self.copy_device(dst, l.ptr, src.len())?;
        driver("event", l.consumed.record(stream))
    }

    /// Copies `src` to `dst` through the pinned slots on the copy `stream`, each slot refilled
    /// once the copy that last read it is done (its event).
    fn stage(&self, dst: u64, src: &[u8], stream: &CudaStream) -> Result<()> {
        let mut st = self.cuda()?.transfers.staging.lock().unwrap_or_else(|p| p.into_inner());
        for (i, chunk) in src.chunks(STAGING_BYTES).enumerate() {
            let at = st.next;
            st.next = (at + 1) % SLOTS;
            let slot = &mut st.slots[at];
            driver("waiting for a staging slot", slot.done.synchronize())?;
            // SAFETY: the slot holds STAGING_BYTES and no queued copy reads it any more (its
            // event has completed); it is ours under the lock until its next event.
            unsafe {
                std::ptr::copy_nonoverlapping(chunk.as_ptr(), slot.ptr, chunk.len());
                let pinned = std::slice::from_raw_parts(slot.ptr, chunk.len());
                let to = dst + (i * STAGING_BYTES) as u64;
                driver("copy to device", drv::memcpy_htod_async(to, pinned, stream.cu_stream()))?;
            }
            driver("event", slot.done.record(stream))?;
        }
        Ok(())
    }

    /// Copies `dst.len()` bytes from device address `src` to the host (after the work queued
    /// before).
    pub fn read(&self, dst: &mut [u8], src: u64) -> Result<()> {
        if self.is_emulated() {
            return crate::emulated::read(dst, src);
        }
        self.bind()?;
        let stream = self.stream()?;
        let st = self.cuda()?.transfers.staging.lock().unwrap_or_else(|p| p.into_inner());
        for (i, chunk) in dst.chunks_mut(STAGING_BYTES).enumerate() {
            // SAFETY: the readback buffer holds STAGING_BYTES and is ours under the lock; the
            // copy has finished (synchronised) before it is read.
            unsafe {
                let pinned = std::slice::from_raw_parts_mut(st.readback, chunk.len());
                let from = src + (i * STAGING_BYTES) as u64;
                driver("copy to host", drv::memcpy_dtoh_async(pinned, from, stream.cu_stream()))?;
                self.synchronize()?;
                std::ptr::copy_nonoverlapping(st.readback, chunk.as_mut_ptr(), chunk.len());
            }
        }
        Ok(())
    }

    /// A device copy of `values` (labels, row indices) in a block that lives as long as the
    /// returned guard.
    pub fn upload_i32(&self, values: &[i32]) -> Result<Block<Memory>> {
        let b = self.block(values.len().max(1) * 4)?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
        self.write(b.ptr, &bytes)?;
        Ok(b)
    }
}
