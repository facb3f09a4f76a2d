//! The distributed binding: wrappers over `maskfr_parallel::Comm` (collectives between
//! rank processes, TCP for host tensors and NCCL for GPU tensors) and the sharded
//! margin-softmax step.

use crate::js;
use crate::tensor::NativeTensor;
use maskfr_core::{Margin, Tensor};
use maskfr_parallel::{shard_dims, PartialFc, ReduceOp, Wire};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::time::Duration;

#[napi]
pub struct Comm {
    inner: maskfr_parallel::Comm,
}

fn owned(tensors: &[&NativeTensor]) -> Result<Vec<Tensor>> {
    tensors.iter().map(|t| t.get().cloned()).collect()
}

/// The op and how its values travel, from their JS names.
fn op_and_wire(op: &str, compress: Option<&str>) -> Result<(ReduceOp, Wire)> {
    let op: ReduceOp = js(op.parse())?;
    Ok((op, js(Wire::parse(compress, op))?))
}

#[napi]
impl Comm {
    /// Rank 0 listens on `addr` (host:port) and waits for the others; rank r > 0 connects
    /// to it. Every later wait is bounded by `timeoutMs`: a dead or stalled rank becomes an
    /// Error naming it.
    #[napi(factory, catch_unwind)]
    pub fn tcp(rank: u32, world: u32, addr: String, timeout_ms: u32) -> Result<Comm> {
        let timeout = Duration::from_millis(timeout_ms as u64);
        Ok(Comm { inner: js(maskfr_parallel::Comm::tcp(rank as usize, world as usize, &addr, timeout))? })
    }

    /// Builds the NCCL communicator of GPU `ordinal` for GPU tensors: rank 0 draws the id,
    /// the TCP ranks hand it out, every rank joins (all ranks call this together).
    #[napi(catch_unwind)]
    pub fn attach_gpu(&mut self, ordinal: u32) -> Result<()> {
        js(self.inner.attach_gpu(ordinal as usize))
    }

    #[napi(getter)]
    pub fn rank(&self) -> u32 {
        self.inner.rank() as u32
    }

    #[napi(getter)]
    pub fn world(&self) -> u32 {
        self.inner.world() as u32
    }

    /// Sums (`sum`, `mean`) or maxes (`max`) `tensors` over the ranks, in place, as one
    /// bucket; `compress` 'f16' sends a sum's values as f16 (half the bytes, rounded).
    #[napi(catch_unwind)]
    pub fn all_reduce(&mut self, tensors: Vec<&NativeTensor>, op: String, compress: Option<String>) -> Result<()> {
        let (op, wire) = op_and_wire(&op, compress.as_deref())?;
        js(self.inner.all_reduce(owned(&tensors)?, op, wire))
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
        let (op, wire) = op_and_wire(&op, compress.as_deref())?;
        Ok(js(self.inner.all_reduce_start(owned(&tensors)?, op, wire))? as i64)
    }

    /// Blocks until host collective `ticket` (and everything before it) is done; for GPU
    /// collectives only raises an error NCCL has already reported (see `drain`).
    #[napi(catch_unwind)]
    pub fn wait(&mut self, ticket: i64) -> Result<()> {
        js(self.inner.wait(ticket as u64))
    }

    /// Waits, at most the timeout, for everything queued on the GPU's stream so far
    /// (collectives included); a dead or stalled rank becomes an error here.
    #[napi(catch_unwind)]
    pub fn drain(&mut self) -> Result<()> {
        js(self.inner.drain())
    }

    /// Every rank's `tensors` become `root`'s, in place.
    #[napi(catch_unwind)]
    pub fn broadcast(&mut self, tensors: Vec<&NativeTensor>, root: u32) -> Result<()> {
        js(self.inner.broadcast(owned(&tensors)?, root as usize))
    }

    /// Every rank's values in rank order.
    #[napi(catch_unwind)]
    pub fn all_gather(&mut self, values: Float32Array) -> Result<Float32Array> {
        Ok(Float32Array::new(js(self.inner.all_gather(values.to_vec()))?))
    }

    #[napi(catch_unwind)]
    pub fn barrier(&mut self) -> Result<()> {
        js(self.inner.barrier())
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
    let (classes, dim) = js(shard_dims(w, e, labels.len()))?;
    let fc = PartialFc {
        start: o.start as usize,
        classes,
        total: o.classes as usize,
        dim,
        margin: Margin { s: o.s, m_arc: o.m_arc, m_cos: o.m_cos },
        sample_rate: o.sample_rate,
        seed: o.seed as u64,
        chunk: o.chunk as usize,
    };
    let out = js(comm.inner.partial_fc_step(fc, w.clone(), e.clone(), labels.to_vec(), step as u64))?;
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
