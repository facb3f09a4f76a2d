//! The distributed binding: a communicator between rank processes and the sharded
//! margin-softmax step. Host tensors go over TCP; GPU tensors go through NCCL once
//! `attachGpu` has built its communicator (from an id handed out over TCP). Tensors are
//! reduced in one flat bucket per call, in place, synchronously or in the background.

use crate::tensor::NativeTensor;
use maskfr_core::Margin;
use maskfr_core::{Device, Tensor};
use maskfr_cuda::nccl::{unique_id, NcclComm, Reduction};
use maskfr_parallel::{flatten, scatter, CommQueue, Communicator, PartialFc, Reduce, TcpComm};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

fn parallel<T>(r: maskfr_parallel::Result<T>) -> Result<T> {
    r.map_err(|e| Error::new(Status::GenericFailure, e.0))
}

#[napi]
pub struct Comm {
    /// Collectives run in order on a worker thread: async ones overlap the caller's work.
    q: CommQueue,
    /// GPU tensors' collectives, queued on the GPU's stream after the work that made them
    /// (shared with the queue's thread, which runs the sharded classifier's step).
    nccl: Option<Arc<Mutex<NcclComm>>>,
    timeout: Duration,
}

/// GPU tensors must be on the GPU the NCCL communicator was built for.
fn same_gpu(tensors: &[Tensor], ordinal: usize) -> Result<()> {
    match tensors.iter().find(|t| t.device() != Device::Cuda(ordinal)) {
        Some(t) => Err(Error::new(
            Status::InvalidArg,
            format!("comm: a tensor on {} but the NCCL communicator is on cuda:{ordinal}", t.device()),
        )),
        None => Ok(()),
    }
}

/// Whether `tensors` live on a GPU (all of them: one device per call).
fn on_gpu(tensors: &[&NativeTensor]) -> Result<bool> {
    let devices = tensors.iter().map(|t| t.get().map(|t| t.device())).collect::<Result<Vec<_>>>()?;
    if devices.windows(2).any(|w| w[0] != w[1]) {
        return Err(Error::new(Status::InvalidArg, format!("comm: tensors on different devices: {devices:?}")));
    }
    Ok(devices.first().is_some_and(|d| *d != Device::Cpu))
}

fn owned(tensors: &[&NativeTensor]) -> Result<Vec<Tensor>> {
    tensors.iter().map(|t| t.get().cloned()).collect()
}

/// The job reducing `tensors` in place as one bucket.
/// The all-reduce of `tensors` as one flat bucket; `compress` 'f16' sends the values as f16
/// (sums only).
fn reduce_job(
    tensors: Vec<Tensor>,
    op: &str,
    world: usize,
    compress: Option<String>,
) -> Result<impl FnOnce(&mut dyn Communicator) -> maskfr_parallel::Result<()>> {
    let (reduce, scale) = match op {
        "sum" => (Reduce::Sum, 1.0),
        "mean" => (Reduce::Sum, 1.0 / world as f32),
        "max" => (Reduce::Max, 1.0),
        _ => return Err(Error::new(Status::InvalidArg, format!("allReduce: op '{op}', expected sum, mean or max"))),
    };
    let f16 = match compress.as_deref() {
        None | Some("none") => false,
        Some("f16") if reduce == Reduce::Sum => true,
        Some(c) => {
            let why = format!("allReduce: compression '{c}' with op '{op}': expected none, or f16 with sum or mean");
            return Err(Error::new(Status::InvalidArg, why));
        }
    };
    Ok(move |c: &mut dyn Communicator| {
        let refs: Vec<&Tensor> = tensors.iter().collect();
        let mut flat = flatten("allReduce", &refs)?;
        if f16 {
            c.all_reduce_f16(&mut flat)?;
        } else {
            c.all_reduce(&mut flat, reduce)?;
        }
        scatter("allReduce", &refs, &flat, scale)
    })
}

#[napi]
impl Comm {
    /// Rank 0 listens on `addr` (host:port) and waits for the others; rank r > 0 connects
    /// to it. Every later wait is bounded by `timeoutMs`: a dead or stalled rank becomes an
    /// Error naming it.
    #[napi(factory, catch_unwind)]
    pub fn tcp(rank: u32, world: u32, addr: String, timeout_ms: u32) -> Result<Comm> {
        let (rank, world) = (rank as usize, world as usize);
        if world == 0 || rank >= world {
            return Err(Error::new(
                Status::InvalidArg,
                format!("comm: rank {rank} of world {world}: need rank < world"),
            ));
        }
        let timeout = Duration::from_millis(timeout_ms as u64);
        let comm = if rank == 0 {
            let listener = TcpListener::bind(&addr).map_err(|e| {
                Error::new(Status::GenericFailure, format!("comm: rank 0 cannot listen on {addr}: {e}"))
            })?;
            parallel(TcpComm::root(listener, world, timeout))?
        } else {
            parallel(TcpComm::join(&addr, rank, world, timeout))?
        };
        Ok(Comm { q: CommQueue::new(Box::new(comm)), nccl: None, timeout })
    }

    /// Builds the NCCL communicator of GPU `ordinal` for GPU tensors: rank 0 draws the id,
    /// the TCP ranks hand it out, every rank joins (all ranks call this together).
    #[napi(catch_unwind)]
    pub fn attach_gpu(&mut self, ordinal: u32) -> Result<()> {
        let mut id = vec![0f32; 32];
        if self.q.rank() == 0 {
            let bytes = parallel(unique_id())?;
            id.iter_mut().zip(bytes.chunks_exact(4)).for_each(|(v, b)| *v = f32::from_ne_bytes(b.try_into().unwrap()));
        }
        // The id's bytes travel as 32 f32 bit patterns (a broadcast copies them untouched).
        let mut id = parallel(self.q.run(move |c| c.broadcast(&mut id, 0).map(|_| id)))?;
        let mut bytes = [0u8; 128];
        bytes.chunks_exact_mut(4).zip(&mut id).for_each(|(b, v)| b.copy_from_slice(&v.to_ne_bytes()));
        let (rank, world) = (self.q.rank(), self.q.world());
        let comm = parallel(NcclComm::new(ordinal as usize, rank, world, bytes, self.timeout))?;
        self.nccl = Some(Arc::new(Mutex::new(comm)));
        Ok(())
    }

    fn gpu_comm(&self) -> Result<MutexGuard<'_, NcclComm>> {
        let n = self.nccl.as_ref().ok_or_else(|| {
            Error::new(
                Status::InvalidArg,
                "comm: GPU tensors need the NCCL communicator: call attachGpu first".to_string(),
            )
        })?;
        Ok(n.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Queues the all-reduce of GPU `tensors` on the GPU's stream.
    fn gpu_all_reduce(&mut self, tensors: &[&NativeTensor], op: &str, compress: Option<&str>) -> Result<()> {
        let t = owned(tensors)?;
        let refs: Vec<&Tensor> = t.iter().collect();
        let reduction = match op {
            "sum" => Reduction::Sum,
            "mean" => Reduction::Mean,
            "max" => Reduction::Max,
            _ => {
                return Err(Error::new(Status::InvalidArg, format!("allReduce: op '{op}', expected sum, mean or max")))
            }
        };
        let f16 = match compress {
            None | Some("none") => false,
            Some("f16") if reduction != Reduction::Max => true,
            Some(c) => {
                let why =
                    format!("allReduce: compression '{c}' with op '{op}': expected none, or f16 with sum or mean");
                return Err(Error::new(Status::InvalidArg, why));
            }
        };
        let mut n = self.gpu_comm()?;
        same_gpu(&t, n.ordinal())?;
        parallel(n.all_reduce(&refs, reduction, f16))
    }

    #[napi(getter)]
    pub fn rank(&self) -> u32 {
        self.q.rank() as u32
    }

    #[napi(getter)]
    pub fn world(&self) -> u32 {
        self.q.world() as u32
    }

    /// Sums (`sum`, `mean`) or maxes (`max`) `tensors` over the ranks, in place, as one
    /// bucket; `compress` 'f16' sends a sum's values as f16 (half the bytes, rounded).
    #[napi(catch_unwind)]
    pub fn all_reduce(&mut self, tensors: Vec<&NativeTensor>, op: String, compress: Option<String>) -> Result<()> {
        if on_gpu(&tensors)? {
            // Queued on the GPU's stream (what reads the result comes after it); `drain`
            // waits, bounded, at the trainer's read-back points.
            self.gpu_all_reduce(&tensors, &op, compress.as_deref())?;
            return parallel(self.gpu_comm()?.check());
        }
        let job = reduce_job(owned(&tensors)?, &op, self.q.world(), compress)?;
        parallel(self.q.run(job))
    }

    /// Starts reducing `tensors` in the background (after everything queued before); returns
    /// a ticket for `wait`. Leave the tensors alone until then. `compress` as `allReduce`.
    #[napi(catch_unwind)]
    pub fn all_reduce_start(
        &mut self,
        tensors: Vec<&NativeTensor>,
        op: String,
        compress: Option<String>,
    ) -> Result<i64> {
        if on_gpu(&tensors)? {
            // Queued on the GPU's stream, ahead of whatever reads the result; `wait` only
            // raises an error NCCL already reported (see `drain`).
            self.gpu_all_reduce(&tensors, &op, compress.as_deref())?;
            return Ok(self.q.submit(|_| Ok(())) as i64);
        }
        let job = reduce_job(owned(&tensors)?, &op, self.q.world(), compress)?;
        Ok(self.q.submit(job) as i64)
    }

    /// Blocks until host collective `ticket` (and everything before it) is done. GPU
    /// collectives are queued on the GPU's stream, so what reads their results waits for
    /// them there: here only an error NCCL has already reported is raised (see `drain`).
    #[napi(catch_unwind)]
    pub fn wait(&mut self, ticket: i64) -> Result<()> {
        parallel(self.q.wait(ticket as u64))?;
        if self.nccl.is_some() {
            parallel(self.gpu_comm()?.check())?;
        }
        Ok(())
    }

    /// Waits, at most the timeout, for everything queued on the GPU's stream so far
    /// (collectives included); a dead or stalled rank becomes an error here (NCCL aborted).
    /// No-op without a GPU communicator.
    #[napi(catch_unwind)]
    pub fn drain(&mut self) -> Result<()> {
        if self.nccl.is_some() {
            parallel(self.gpu_comm()?.wait())?;
        }
        Ok(())
    }

    /// Every rank's `tensors` become `root`'s, in place.
    #[napi(catch_unwind)]
    pub fn broadcast(&mut self, tensors: Vec<&NativeTensor>, root: u32) -> Result<()> {
        let t = owned(&tensors)?;
        if on_gpu(&tensors)? {
            let refs: Vec<&Tensor> = t.iter().collect();
            let mut n = self.gpu_comm()?;
            same_gpu(&t, n.ordinal())?;
            parallel(n.broadcast(&refs, root as usize))?;
            return parallel(n.wait());
        }
        parallel(self.q.run(move |c| {
            let refs: Vec<&Tensor> = t.iter().collect();
            let mut flat = flatten("broadcast", &refs)?;
            c.broadcast(&mut flat, root as usize)?;
            scatter("broadcast", &refs, &flat, 1.0)
        }))
    }

    /// Every rank's values in rank order.
    #[napi(catch_unwind)]
    pub fn all_gather(&mut self, values: Float32Array) -> Result<Float32Array> {
        let v = values.to_vec();
        Ok(Float32Array::new(parallel(self.q.run(move |c| c.all_gather(&v)))?))
    }

    #[napi(catch_unwind)]
    pub fn barrier(&mut self) -> Result<()> {
        parallel(self.q.run(|c| c.barrier()))
    }
}

#[napi(object)]
pub struct PartialFcOptions {
    /// The first class of this rank's shard.
    pub start: u32,
    /// Every rank's classes together (labels must lie in [0, classes)).
    pub classes: u32,
    pub s: f64,
    pub m_arc: f64,
    pub m_cos: f64,
    pub sample_rate: f64,
    pub seed: i64,
    pub chunk: u32,
}

#[napi(object, object_from_js = false)]
pub struct PartialFcStep {
    /// The mean loss over the global batch, 0-d on the shard's device (not read back).
    pub loss: NativeTensor,
    pub grad_embeddings: NativeTensor,
    pub grad_weight: NativeTensor,
}

/// The host communicator with a GPU's NCCL communicator beside it: collectives of that GPU's
/// tensors go through NCCL on its stream, everything else over TCP.
struct WithGpu<'a> {
    host: &'a mut dyn Communicator,
    nccl: &'a Mutex<NcclComm>,
}

/// The NCCL communicator when `tensors` live on its GPU; None for host tensors.
fn gpu_for<'n>(
    nccl: &'n Mutex<NcclComm>,
    tensors: &[&Tensor],
) -> maskfr_parallel::Result<Option<MutexGuard<'n, NcclComm>>> {
    if tensors.first().is_none_or(|t| t.device() == Device::Cpu) {
        return Ok(None);
    }
    let n = nccl.lock().unwrap_or_else(|p| p.into_inner());
    let owned: Vec<Tensor> = tensors.iter().map(|&t| t.clone()).collect();
    same_gpu(&owned, n.ordinal()).map_err(|e| maskfr_parallel::Error(e.reason.clone()))?;
    Ok(Some(n))
}

impl Communicator for WithGpu<'_> {
    fn rank(&self) -> usize {
        self.host.rank()
    }
    fn world(&self) -> usize {
        self.host.world()
    }
    fn all_reduce(&mut self, buf: &mut [f32], op: Reduce) -> maskfr_parallel::Result<()> {
        self.host.all_reduce(buf, op)
    }
    fn all_gather(&mut self, local: &[f32]) -> maskfr_parallel::Result<Vec<f32>> {
        self.host.all_gather(local)
    }
    fn broadcast(&mut self, buf: &mut [f32], root: usize) -> maskfr_parallel::Result<()> {
        self.host.broadcast(buf, root)
    }
    fn all_gather_tensor(&mut self, t: &Tensor) -> maskfr_parallel::Result<Tensor> {
        match gpu_for(self.nccl, &[t])? {
            Some(mut n) => n.all_gather(t).map_err(|e| maskfr_parallel::Error(e.0)),
            None => self.host.all_gather_tensor(t),
        }
    }
    fn all_reduce_tensors(&mut self, tensors: &[&Tensor], op: Reduce) -> maskfr_parallel::Result<()> {
        match gpu_for(self.nccl, tensors)? {
            Some(mut n) => {
                let op = if op == Reduce::Max { Reduction::Max } else { Reduction::Sum };
                n.all_reduce(tensors, op, false).map_err(|e| maskfr_parallel::Error(e.0))
            }
            None => self.host.all_reduce_tensors(tensors, op),
        }
    }
    fn reduce_scatter_tensor(&mut self, t: &Tensor) -> maskfr_parallel::Result<Tensor> {
        match gpu_for(self.nccl, &[t])? {
            Some(mut n) => n.reduce_scatter(t).map_err(|e| maskfr_parallel::Error(e.0)),
            None => self.host.reduce_scatter_tensor(t),
        }
    }
}

/// Forward and backward of the sharded margin-softmax loss of the global batch: `weight`
/// is this rank's shard `[n, D]`, `embeddings` its own rows `[b, D]`, both on one device
/// (on a GPU with several ranks, through the communicator `attachGpu` made). Runs on the
/// communicator's thread, after the collectives queued before it.
#[napi(catch_unwind)]
pub fn partial_fc_step(
    comm: &mut Comm,
    weight: &NativeTensor,
    embeddings: &NativeTensor,
    labels: Int32Array,
    step: i64,
    o: PartialFcOptions,
) -> Result<PartialFcStep> {
    let (w, e) = (weight.get()?, embeddings.get()?);
    let (ws, es) = (w.shape().to_vec(), e.shape().to_vec());
    if ws.len() != 2 || es.len() != 2 || ws[1] != es[1] || es[0] != labels.len() {
        return Err(Error::new(
            Status::InvalidArg,
            format!(
                "partialFc: weight {ws:?} and embeddings {es:?} with {} labels: need [n, D], [b, D], b labels",
                labels.len()
            ),
        ));
    }
    if w.device() != e.device() {
        let why = format!("partialFc: the shard is on {} but the embeddings on {}", w.device(), e.device());
        return Err(Error::new(Status::InvalidArg, why));
    }
    let fc = PartialFc {
        start: o.start as usize,
        classes: ws[0],
        total: o.classes as usize,
        dim: ws[1],
        margin: Margin { s: o.s, m_arc: o.m_arc, m_cos: o.m_cos },
        sample_rate: o.sample_rate,
        seed: o.seed as u64,
        chunk: o.chunk as usize,
    };
    // Before the queue: a failed job would fail every later collective too.
    parallel(fc.check_labels(&labels))?;
    let (wt, et) = (w.clone(), e.clone());
    let labels = labels.to_vec();
    let nccl = comm.nccl.clone().filter(|_| w.device() != Device::Cpu);
    let out = parallel(comm.q.run(move |c| match &nccl {
        Some(n) => fc.step(&mut WithGpu { host: c, nccl: n }, &wt, &et, &labels, step as u64),
        None => fc.step(c, &wt, &et, &labels, step as u64),
    }))?;
    Ok(PartialFcStep {
        loss: NativeTensor::wrap(out.loss),
        grad_embeddings: NativeTensor::wrap(out.grad_embeddings),
        grad_weight: NativeTensor::wrap(out.grad_weight),
    })
}

/// Rank `rank`'s classes of `classes` over `world` ranks: `[first, count]`.
#[napi(catch_unwind)]
pub fn class_shard(classes: u32, world: u32, rank: u32) -> Result<Vec<u32>> {
    if world == 0 || rank >= world {
        return Err(Error::new(Status::InvalidArg, format!("classShard: rank {rank} of world {world}")));
    }
    let (start, n) = maskfr_parallel::shard(classes as usize, world as usize, rank as usize);
    Ok(vec![start as u32, n as u32])
}
