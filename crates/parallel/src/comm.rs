//! The communicator a rank process holds ([`Comm`]). Host tensors go over TCP, their
//! collectives run in order on a worker thread (so a background reduction overlaps the
//! caller's work); GPU tensors go through NCCL on the GPU's stream once
//! [`Comm::attach_gpu`] has built its communicator from an id handed out over TCP. Each call
//! moves its tensors as one flat bucket, in place.

use crate::{
    flatten, scatter, CommQueue, Communicator, Error, PartialFc, Reduce, ReduceOp, Result, Step, TcpComm, Wire,
};
use maskfr_core::{Device, Tensor};
use maskfr_cuda::nccl::{unique_id, NcclComm, Reduction};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The NCCL communicator once attached, shared by the caller's thread (which queues GPU
/// collectives on the GPU's stream) and the queue's thread (which runs the sharded
/// classifier's step).
type Nccl = Arc<Mutex<Option<NcclComm>>>;

fn lock(nccl: &Nccl) -> MutexGuard<'_, Option<NcclComm>> {
    nccl.lock().unwrap_or_else(|p| p.into_inner())
}

/// GPU tensors must be on the GPU the NCCL communicator was built for.
fn same_gpu(tensors: &[&Tensor], n: &NcclComm) -> Result<()> {
    match tensors.iter().find(|t| t.device() != Device::Cuda(n.ordinal())) {
        Some(t) => {
            Err(Error(format!("comm: a tensor on {} but the NCCL communicator is on cuda:{}", t.device(), n.ordinal())))
        }
        None => Ok(()),
    }
}

fn reduction(op: ReduceOp) -> Reduction {
    match op {
        ReduceOp::Sum => Reduction::Sum,
        ReduceOp::Mean => Reduction::Mean,
        ReduceOp::Max => Reduction::Max,
    }
}

/// The host all-reduce of `tensors` as one flat bucket; `wire` f16 compresses sums and
/// means (a max travels as f32).
fn reduce_on_host(c: &mut dyn Communicator, tensors: &[Tensor], op: ReduceOp, wire: Wire) -> Result<()> {
    let refs: Vec<&Tensor> = tensors.iter().collect();
    let mut flat = flatten("allReduce", &refs)?;
    match op {
        ReduceOp::Max => c.all_reduce(&mut flat, Reduce::Max)?,
        _ if wire == Wire::F16 => c.all_reduce_f16(&mut flat)?,
        _ => c.all_reduce(&mut flat, Reduce::Sum)?,
    }
    let scale = if op == ReduceOp::Mean { 1.0 / c.world() as f32 } else { 1.0 };
    scatter("allReduce", &refs, &flat, scale)
}

/// The [`Communicator`] the queue's thread runs on: TCP, with the attached GPU's tensors
/// through NCCL. Before `attach_gpu` every tensor goes to TCP, which passes any tensor
/// through with one rank and otherwise names `attachGpu` for GPU tensors.
struct TcpWithNccl {
    tcp: TcpComm,
    nccl: Nccl,
}

impl TcpWithNccl {
    /// `f` on the NCCL communicator when `tensors` live on a GPU and one is attached; None
    /// when TCP moves them.
    fn through_nccl<R>(&self, tensors: &[&Tensor], f: impl FnOnce(&mut NcclComm) -> Result<R>) -> Result<Option<R>> {
        if tensors.first().is_none_or(|t| t.device() == Device::Cpu) {
            return Ok(None);
        }
        match lock(&self.nccl).as_mut() {
            Some(n) => {
                same_gpu(tensors, n)?;
                f(n).map(Some)
            }
            None => Ok(None),
        }
    }
}

impl Communicator for TcpWithNccl {
    fn rank(&self) -> usize {
        self.tcp.rank()
    }
    fn world(&self) -> usize {
        self.tcp.world()
    }
    fn all_reduce(&mut self, buf: &mut [f32], op: Reduce) -> Result<()> {
        self.tcp.all_reduce(buf, op)
    }
    fn all_reduce_f16(&mut self, buf: &mut [f32]) -> Result<()> {
        self.tcp.all_reduce_f16(buf)
    }
    fn all_gather(&mut self, local: &[f32]) -> Result<Vec<f32>> {
        self.tcp.all_gather(local)
    }
    fn broadcast(&mut self, buf: &mut [f32], root: usize) -> Result<()> {
        self.tcp.broadcast(buf, root)
    }
    fn broadcast_bytes(&mut self, buf: &mut [u8], root: usize) -> Result<()> {
        self.tcp.broadcast_bytes(buf, root)
    }
    fn all_gather_bytes(&mut self, local: &[u8]) -> Result<Vec<u8>> {
        self.tcp.all_gather_bytes(local)
    }
    fn all_gather_tensor(&mut self, t: &Tensor) -> Result<Tensor> {
        match self.through_nccl(&[t], |n| n.all_gather(t))? {
            Some(all) => Ok(all),
            None => self.tcp.all_gather_tensor(t),
        }
    }
    fn all_reduce_tensors(&mut self, tensors: &[&Tensor], op: Reduce) -> Result<()> {
        let nccl_op = if op == Reduce::Max { Reduction::Max } else { Reduction::Sum };
        match self.through_nccl(tensors, |n| n.all_reduce(tensors, nccl_op, false))? {
            Some(()) => Ok(()),
            None => self.tcp.all_reduce_tensors(tensors, op),
        }
    }
    fn reduce_scatter_tensor(&mut self, t: &Tensor) -> Result<Tensor> {
        match self.through_nccl(&[t], |n| n.reduce_scatter(t))? {
            Some(own) => Ok(own),
            None => self.tcp.reduce_scatter_tensor(t),
        }
    }
}

/// What a rank process talks to the others through (the module's doc says how).
pub struct Comm {
    /// Host collectives, in order on a worker thread.
    queue: CommQueue,
    nccl: Nccl,
    timeout: Duration,
}

impl Comm {
    /// Rank 0 listens on `addr` (host:port) and waits for the others; rank r > 0 connects to
    /// it. Every later wait is bounded by `timeout`: a dead or stalled rank becomes an error
    /// naming it.
    pub fn tcp(rank: usize, world: usize, addr: &str, timeout: Duration) -> Result<Comm> {
        if world == 0 || rank >= world {
            return Err(Error(format!("comm: rank {rank} of world {world}: need rank < world")));
        }
        let tcp = if rank == 0 {
            let listener =
                TcpListener::bind(addr).map_err(|e| Error(format!("comm: rank 0 cannot listen on {addr}: {e}")))?;
            TcpComm::root(listener, world, timeout)?
        } else {
            TcpComm::join(addr, rank, world, timeout)?
        };
        let nccl = Nccl::default();
        let queue = CommQueue::new(Box::new(TcpWithNccl { tcp, nccl: nccl.clone() }));
        Ok(Comm { queue, nccl, timeout })
    }

    pub fn rank(&self) -> usize {
        self.queue.rank()
    }

    pub fn world(&self) -> usize {
        self.queue.world()
    }

    /// Builds the NCCL communicator of GPU `ordinal` for GPU tensors: rank 0 draws the id,
    /// the TCP ranks hand its bytes out, every rank joins (all ranks call this together).
    pub fn attach_gpu(&mut self, ordinal: usize) -> Result<()> {
        let mut id = if self.rank() == 0 { unique_id()? } else { [0; 128] };
        let id = self.queue.run(move |c| c.broadcast_bytes(&mut id, 0).map(|_| id))?;
        let comm = NcclComm::new(ordinal, self.rank(), self.world(), id, self.timeout)?;
        *lock(&self.nccl) = Some(comm);
        Ok(())
    }

    /// `f` on the attached NCCL communicator when `tensors` live on a GPU (one device for
    /// all of them); None for host tensors.
    fn on_gpu<R>(
        &self,
        tensors: &[Tensor],
        f: impl FnOnce(&mut NcclComm, &[&Tensor]) -> Result<R>,
    ) -> Result<Option<R>> {
        let devices: Vec<Device> = tensors.iter().map(|t| t.device()).collect();
        if devices.windows(2).any(|w| w[0] != w[1]) {
            return Err(Error(format!("comm: tensors on different devices: {devices:?}")));
        }
        if devices.first().is_none_or(|d| *d == Device::Cpu) {
            return Ok(None);
        }
        let mut slot = lock(&self.nccl);
        let n = slot
            .as_mut()
            .ok_or_else(|| Error("comm: GPU tensors need the NCCL communicator: call attachGpu first".into()))?;
        let refs: Vec<&Tensor> = tensors.iter().collect();
        same_gpu(&refs, n)?;
        f(n, &refs).map(Some)
    }

    /// Reduces `tensors` over the ranks in place, as one bucket; `wire` f16 sends a sum's
    /// or mean's values as f16 (half the bytes, rounded). Host tensors: done on return, after
    /// everything queued. GPU tensors: queued on the GPU's stream, ahead of whatever reads
    /// them ([`Comm::drain`] waits); an error NCCL has reported is raised here.
    pub fn all_reduce(&mut self, tensors: Vec<Tensor>, op: ReduceOp, wire: Wire) -> Result<()> {
        let gpu = self.on_gpu(&tensors, |n, t| {
            n.all_reduce(t, reduction(op), wire == Wire::F16)?;
            n.check()
        })?;
        match gpu {
            Some(()) => Ok(()),
            None => self.queue.run(move |c| reduce_on_host(c, &tensors, op, wire)),
        }
    }

    /// Starts reducing `tensors` as [`Comm::all_reduce`] does, in the background after
    /// everything started before; returns the ticket [`Comm::wait`] takes. Leave the tensors
    /// alone until then.
    pub fn all_reduce_start(&mut self, tensors: Vec<Tensor>, op: ReduceOp, wire: Wire) -> Result<u64> {
        let gpu = self.on_gpu(&tensors, |n, t| n.all_reduce(t, reduction(op), wire == Wire::F16))?;
        Ok(match gpu {
            // Already queued on the GPU's stream: the ticket only keeps the order.
            Some(()) => self.queue.submit(|_| Ok(())),
            None => self.queue.submit(move |c| reduce_on_host(c, &tensors, op, wire)),
        })
    }

    /// Blocks until host collective `ticket` (and everything before it) is done. GPU
    /// collectives are queued on the GPU's stream, so what reads their results waits for
    /// them there: here only an error NCCL has already reported is raised (see `drain`).
    pub fn wait(&mut self, ticket: u64) -> Result<()> {
        self.queue.wait(ticket)?;
        lock(&self.nccl).as_mut().map_or(Ok(()), |n| n.check())
    }

    /// Waits, at most the timeout, for everything queued on the GPU's stream so far
    /// (collectives included); a dead or stalled rank becomes an error here (NCCL aborted).
    /// Nothing to do without a GPU communicator.
    pub fn drain(&mut self) -> Result<()> {
        lock(&self.nccl).as_mut().map_or(Ok(()), |n| n.wait())
    }

    /// Every rank's `tensors` become `root`'s, in place.
    pub fn broadcast(&mut self, tensors: Vec<Tensor>, root: usize) -> Result<()> {
        let gpu = self.on_gpu(&tensors, |n, t| {
            n.broadcast(t, root)?;
            n.wait()
        })?;
        match gpu {
            Some(()) => Ok(()),
            None => self.queue.run(move |c| {
                let refs: Vec<&Tensor> = tensors.iter().collect();
                let mut flat = flatten("broadcast", &refs)?;
                c.broadcast(&mut flat, root)?;
                scatter("broadcast", &refs, &flat, 1.0)
            }),
        }
    }

    /// Every rank's `values` (equal lengths) in rank order.
    pub fn all_gather(&mut self, values: Vec<f32>) -> Result<Vec<f32>> {
        self.queue.run(move |c| c.all_gather(&values))
    }

    pub fn barrier(&mut self) -> Result<()> {
        self.queue.run(|c| c.barrier())
    }

    /// One step of the sharded classifier ([`PartialFc::step`]) on the queue's thread, after
    /// the collectives queued before it; the attached GPU's tensors go through NCCL.
    pub fn partial_fc_step(
        &mut self,
        fc: PartialFc,
        weight: Tensor,
        embeddings: Tensor,
        labels: Vec<i32>,
        step: u64,
    ) -> Result<Step> {
        // Before the queue: a failed job would fail every later collective too.
        fc.check_labels(&labels)?;
        self.queue.run(move |c| fc.step(c, &weight, &embeddings, &labels, step))
    }
}
