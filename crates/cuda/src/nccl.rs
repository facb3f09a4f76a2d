//! Collectives between GPU ranks through NCCL, on each GPU's one stream (so a collective
//! runs after the kernels that made its gradients, with no extra synchronisation). The
//! communicator is made from a unique id that rank 0 draws and the CPU rendezvous hands to
//! the others. Waits are bounded: past the timeout, or on NCCL's own asynchronous error, the
//! communicator is aborted and the error says so, so a dead or stalled rank never hangs the
//! others (making the communicator is bounded too). On the emulated device a communicator
//! has one rank: the buckets and casts around each collective run, the collective itself is
//! the identity (or a copy) it is on one rank.

use crate::backend::gpu;
use crate::gpu::{elementwise, Arg, Gpu};
use crate::{probe::require, Error, Result};
use cudarc::nccl::{result as nc, sys};
use maskfr_core::{DType, Tensor};
use std::time::{Duration, Instant};

fn nccl<T>(what: &str, r: std::result::Result<T, nc::NcclError>) -> Result<T> {
    r.map_err(|e| Error(format!("nccl: {what}: {e:?}")))
}

/// Rank 0's draw of the id every rank builds its communicator from (128 bytes).
pub fn unique_id() -> Result<[u8; 128]> {
    if crate::emulated::enabled() {
        return Ok([0; 128]);
    }
    require("nccl")?;
    let id = nccl("unique id", nc::get_uniqueid())?;
    Ok(id.internal.map(|c| c as u8))
}

/// A communicator handle crossing from the thread that made it.
struct Handle(sys::ncclComm_t);

// SAFETY: an NCCL communicator may be used from any thread (one call at a time).
unsafe impl Send for Handle {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    Sum,
    Mean,
    Max,
}

pub struct NcclComm {
    gpu: &'static Gpu,
    comm: sys::ncclComm_t,
    rank: usize,
    world: usize,
    timeout: Duration,
    /// One rank on the emulated device (`comm` is null).
    emulated: bool,
}

// SAFETY: NCCL communicators may be used from any thread, one call at a time (`&mut self`
// for every collective).
unsafe impl Send for NcclComm {}

impl NcclComm {
    /// Joins the communicator of `world` ranks on GPU `ordinal` (every rank calls it with the
    /// same `id`, within `timeout` of each other).
    pub fn new(ordinal: usize, rank: usize, world: usize, id: [u8; 128], timeout: Duration) -> Result<NcclComm> {
        if crate::emulated::enabled() {
            if world != 1 {
                return Err(Error(format!(
                    "nccl: the emulated device runs one rank, not {world}: use GPUs or CPU ranks"
                )));
            }
            let comm = std::ptr::null_mut();
            return Ok(NcclComm { gpu: gpu(ordinal)?, comm, rank, world, timeout, emulated: true });
        }
        require("nccl")?;
        let gpu = gpu(ordinal)?;
        let uid = sys::ncclUniqueId { internal: id.map(|b| b as std::ffi::c_char) };
        // The blocking init waits for every rank: it runs on a helper thread so a rank that
        // never arrives is an error here after `timeout` (the stuck helper dies with the
        // process, which stops on that error).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let made = gpu.bind().and_then(|_| {
                let mut comm = std::ptr::null_mut();
                // SAFETY: `comm` receives the new communicator; the GPU's context is current.
                nccl("init", unsafe { nc::comm_init_rank(&mut comm, world as i32, uid, rank as i32) })
                    .map(|_| Handle(comm))
            });
            let _ = tx.send(made);
        });
        let comm = match rx.recv_timeout(timeout) {
            Ok(made) => made?.0,
            Err(_) => {
                return Err(Error(format!(
                    "nccl: rank {rank} of {world}: the communicator was not made within {:.0} s (a rank missing?)",
                    timeout.as_secs_f64()
                )))
            }
        };
        Ok(NcclComm { gpu, comm, rank, world, timeout, emulated: false })
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn ordinal(&self) -> usize {
        self.gpu.ordinal
    }

    pub fn world(&self) -> usize {
        self.world
    }

    fn live(&self) -> Result<()> {
        if self.comm.is_null() && !self.emulated {
            return Err(Error(format!(
                "nccl: rank {}: the communicator was aborted after an earlier failure",
                self.rank
            )));
        }
        Ok(())
    }

    /// Reduces `tensors` over the ranks in place, as one bucket; with `f16` the bucket
    /// travels as f16 (half the bytes; NCCL adds in f16).
    pub fn all_reduce(&mut self, tensors: &[&Tensor], op: Reduction, f16: bool) -> Result<()> {
        let op = match op {
            Reduction::Sum => sys::ncclRedOp_t::ncclSum,
            Reduction::Mean => sys::ncclRedOp_t::ncclAvg,
            Reduction::Max => sys::ncclRedOp_t::ncclMax,
        };
        let (dtype, width) =
            if f16 { (sys::ncclDataType_t::ncclFloat16, 2) } else { (sys::ncclDataType_t::ncclFloat32, 4) };
        self.bucket(tensors, width, |comm, ptr, count, stream| {
            // SAFETY: `ptr` holds `count` values of `dtype`; queued on the GPU's stream.
            nccl("all-reduce", unsafe { nc::all_reduce(ptr as _, ptr as _, count, dtype, op, comm, stream) }).map(drop)
        })
    }

    /// Every rank's `tensors` take rank `root`'s values.
    pub fn broadcast(&mut self, tensors: &[&Tensor], root: usize) -> Result<()> {
        let dtype = sys::ncclDataType_t::ncclFloat32;
        self.bucket(tensors, 4, |comm, ptr, count, stream| {
            // SAFETY: as in `all_reduce`.
            nccl("broadcast", unsafe { nc::broadcast(ptr as _, ptr as _, count, dtype, root as i32, comm, stream) })
                .map(drop)
        })
    }

    /// Every rank's f32 `t` (equal shapes), stacked in rank order along dimension 0.
    pub fn all_gather(&mut self, t: &Tensor) -> Result<Tensor> {
        self.live()?;
        let src = crate::gpu::addr("all-gather", t, DType::F32)?;
        let mut shape = t.shape().to_vec();
        match shape.first_mut() {
            Some(rows) => *rows *= self.world,
            None => return Err(Error("nccl: all-gather of a 0-d tensor: expected [rows, ...]".into())),
        }
        let (out, dst) = self.gpu.empty(&shape, DType::F32)?;
        if self.emulated {
            self.gpu.copy_device(dst, src, t.numel() * 4)?;
            return Ok(out);
        }
        let (comm, stream) = (self.comm, self.stream()?);
        // SAFETY: `src` holds numel f32s, `dst` world × numel; queued on the GPU's stream.
        nccl("all-gather", unsafe {
            nc::all_gather(src as _, dst as _, t.numel(), sys::ncclDataType_t::ncclFloat32, comm, stream)
        })?;
        Ok(out)
    }

    /// The sum over the ranks of f32 `t` (rows a multiple of the world), of which this rank
    /// keeps its block of rows.
    pub fn reduce_scatter(&mut self, t: &Tensor) -> Result<Tensor> {
        self.live()?;
        let src = crate::gpu::addr("reduce-scatter", t, DType::F32)?;
        let mut shape = t.shape().to_vec();
        match shape.first_mut() {
            Some(rows) if *rows % self.world == 0 => *rows /= self.world,
            _ => {
                return Err(Error(format!(
                    "nccl: reduce-scatter of shape {:?} over {} ranks: expected rows a multiple of the world",
                    t.shape(),
                    self.world
                )))
            }
        }
        let (out, dst) = self.gpu.empty(&shape, DType::F32)?;
        if self.emulated {
            self.gpu.copy_device(dst, src, out.numel() * 4)?;
            return Ok(out);
        }
        let (comm, stream) = (self.comm, self.stream()?);
        // SAFETY: `src` holds world × n f32s, `dst` n; queued on the GPU's stream.
        nccl("reduce-scatter", unsafe {
            let (f32, sum) = (sys::ncclDataType_t::ncclFloat32, sys::ncclRedOp_t::ncclSum);
            nc::reduce_scatter(src as _, dst as _, out.numel(), f32, sum, comm, stream)
        })?;
        Ok(out)
    }

    /// The GPU's stream, its context bound to this thread (NCCL launches into it).
    fn stream(&self) -> Result<sys::cudaStream_t> {
        self.gpu.bind()?;
        Ok(self.gpu.stream()?.cu_stream() as sys::cudaStream_t)
    }

    /// Copies the f32 `tensors` into one device bucket of `width`-byte values (casting to
    /// f16 for 2), runs `collective` on it in place, and copies the result back.
    fn bucket(
        &mut self,
        tensors: &[&Tensor],
        width: usize,
        collective: impl FnOnce(sys::ncclComm_t, u64, usize, sys::cudaStream_t) -> Result<()>,
    ) -> Result<()> {
        self.live()?;
        let ptrs: Vec<u64> =
            tensors.iter().map(|t| crate::gpu::addr("collective", t, DType::F32)).collect::<Result<_>>()?;
        let total: usize = tensors.iter().map(|t| t.numel()).sum();
        if total == 0 {
            return Ok(());
        }
        let g = self.gpu;
        let block = g.block(total * width)?;
        let copy = |into_bucket: bool| -> Result<()> {
            let mut at = 0u64;
            for (t, &p) in tensors.iter().zip(&ptrs) {
                let (n, b) = (t.numel(), block.ptr + at * width as u64);
                let (src, dst) = if into_bucket { (p, b) } else { (b, p) };
                if width == 4 {
                    g.copy_device(dst, src, n * 4)?;
                } else {
                    let cast = if into_bucket { "f32_to_f16" } else { "f16_to_f32" };
                    g.launch("elementwise", cast, elementwise(n), &[Arg::Ptr(src), Arg::Ptr(dst), Arg::I64(n as i64)])?;
                }
                at += n as u64;
            }
            Ok(())
        };
        copy(true)?;
        if !self.emulated {
            collective(self.comm, block.ptr, total, self.stream()?)?;
        }
        copy(false)
    }

    /// Waits for the queued collectives, at most the timeout; a timeout or an error NCCL
    /// reports aborts the communicator (it cannot be used again) and is returned.
    pub fn wait(&mut self) -> Result<()> {
        self.live()?;
        if self.emulated {
            return Ok(()); // everything ran when it was called
        }
        self.gpu.bind()?; // the stream is the legacy default one: the current context's
        let start = Instant::now();
        let stream = self.gpu.stream()?.cu_stream();
        loop {
            // SAFETY: the stream lives as long as the Gpu (the process).
            match unsafe { cudarc::driver::sys::cuStreamQuery(stream) } {
                cudarc::driver::sys::CUresult::CUDA_SUCCESS => return Ok(()),
                cudarc::driver::sys::CUresult::CUDA_ERROR_NOT_READY => {}
                e => return Err(Error(format!("cuda: waiting for rank {}'s collectives: {e:?}", self.rank))),
            }
            self.check()?;
            if start.elapsed() > self.timeout {
                let why = format!("not done after {:.0} s (a rank died or stalled?)", self.timeout.as_secs_f64());
                return Err(self.abort(&why));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Whether NCCL has reported an asynchronous error (a peer gone, say), without waiting:
    /// if so the communicator is aborted and the error returned.
    pub fn check(&mut self) -> Result<()> {
        self.live()?;
        if self.emulated {
            return Ok(());
        }
        let mut async_err = sys::ncclResult_t::ncclSuccess;
        // SAFETY: a live communicator and a pointer to a local.
        unsafe { sys::ncclCommGetAsyncError(self.comm, &mut async_err) };
        if async_err != sys::ncclResult_t::ncclSuccess {
            return Err(self.abort(&format!("NCCL reported {async_err:?}")));
        }
        Ok(())
    }

    fn abort(&mut self, why: &str) -> Error {
        // SAFETY: aborting a live communicator; it is not used again (null below).
        unsafe { nc::comm_abort(self.comm) }.ok();
        self.comm = std::ptr::null_mut();
        Error(format!("nccl: rank {} of {}: collectives {why}; communicator aborted", self.rank, self.world))
    }
}

impl Drop for NcclComm {
    fn drop(&mut self) {
        let Ok(stream) = self.gpu.stream() else { return };
        if self.comm.is_null() || self.gpu.bind().is_err() {
            return;
        }
        // Destroying flushes queued collectives, which would wait for the other ranks: with
        // work still queued (an error between start and wait), abort instead.
        // SAFETY: the stream lives as long as the Gpu; a live communicator, released once.
        unsafe {
            let idle =
                cudarc::driver::sys::cuStreamQuery(stream.cu_stream()) == cudarc::driver::sys::CUresult::CUDA_SUCCESS;
            if idle {
                nc::comm_destroy(self.comm).ok();
            } else {
                nc::comm_abort(self.comm).ok();
            }
        }
    }
}
