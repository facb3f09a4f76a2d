//! maskfr-parallel: what ranks say to each other. The [`Communicator`] interface and its
//! implementations: [`TcpComm`] for ranks that are separate processes (a star over TCP with
//! rank 0 at the centre, reductions summed in rank order so results are deterministic, and
//! every wait bounded so a dead or stalled rank becomes an error naming it, never a hang),
//! and [`Comm`], what a rank process holds: TCP for host tensors and, once a GPU is attached,
//! NCCL for that GPU's tensors, with the host collectives queued in the background.

mod comm;
mod partial_fc;
mod queue;
mod tcp;

pub use comm::Comm;
pub use partial_fc::{shard, shard_dims, PartialFc, Step};
pub use queue::CommQueue;
pub use tcp::TcpComm;

use maskfr_core::{Device, Tensor};
pub use maskfr_core::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// What a [`Communicator`] reduces with, element by element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    Sum,
    Max,
}

/// An all-reduce as callers name it: `sum`, `mean` (the sum scaled by 1/world) or `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
}

impl FromStr for ReduceOp {
    type Err = Error;
    fn from_str(op: &str) -> Result<ReduceOp> {
        match op {
            "sum" => Ok(ReduceOp::Sum),
            "mean" => Ok(ReduceOp::Mean),
            "max" => Ok(ReduceOp::Max),
            _ => Err(Error(format!("allReduce: op '{op}', expected sum, mean or max"))),
        }
    }
}

impl fmt::Display for ReduceOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Mean => "mean",
            ReduceOp::Max => "max",
        })
    }
}

/// How a reduction's values travel: 4-byte f32, or 2-byte f16 (rounded; gradient
/// compression, half the bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    F32,
    F16,
}

impl Wire {
    /// The wire a compression name asks for (`none` or absent: f32; `f16`); f16 carries sums
    /// and means only.
    pub fn parse(compression: Option<&str>, op: ReduceOp) -> Result<Wire> {
        match compression {
            None | Some("none") => Ok(Wire::F32),
            Some("f16") if op != ReduceOp::Max => Ok(Wire::F16),
            Some(c) => Err(Error(format!(
                "allReduce: compression '{c}' with op '{op}': expected none, or f16 with sum or mean"
            ))),
        }
    }
}

pub trait Communicator: Send {
    fn rank(&self) -> usize;
    fn world(&self) -> usize;
    /// Every rank ends with the element-wise reduction of every rank's `buf`.
    fn all_reduce(&mut self, buf: &mut [f32], op: Reduce) -> Result<()>;
    /// Every rank's `local` (equal lengths), concatenated in rank order.
    fn all_gather(&mut self, local: &[f32]) -> Result<Vec<f32>>;
    /// Every rank ends with `root`'s `buf`.
    fn broadcast(&mut self, buf: &mut [f32], root: usize) -> Result<()>;
    /// Every rank ends with `root`'s bytes, untouched (an id, say: no value is read as a float).
    fn broadcast_bytes(&mut self, buf: &mut [u8], root: usize) -> Result<()>;
    /// Every rank's `local` bytes (equal lengths), concatenated in rank order.
    fn all_gather_bytes(&mut self, local: &[u8]) -> Result<Vec<u8>>;
    /// Every rank's integers (equal lengths) in rank order, exact at any size (as f32 they
    /// would round above 2^24).
    fn all_gather_i32(&mut self, local: &[i32]) -> Result<Vec<i32>> {
        let bytes: Vec<u8> = local.iter().flat_map(|v| v.to_le_bytes()).collect();
        let all = self.all_gather_bytes(&bytes)?;
        Ok(all.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect())
    }
    /// The all-reduced sum of `buf`, of which this rank keeps its `len/world` slice.
    fn reduce_scatter(&mut self, buf: &[f32]) -> Result<Vec<f32>> {
        let mut all = buf.to_vec();
        self.all_reduce(&mut all, Reduce::Sum)?;
        let per = all.len() / self.world();
        Ok(all[self.rank() * per..(self.rank() + 1) * per].to_vec())
    }
    // Tensor collectives. These defaults move host tensors through the slice collectives
    // above; a GPU communicator overrides them for its device's tensors. One rank needs no
    // peers: any device's tensors pass through unchanged.

    /// Every rank's `t` (equal shapes), stacked in rank order along dimension 0.
    fn all_gather_tensor(&mut self, t: &Tensor) -> Result<Tensor> {
        if self.world() == 1 {
            return Ok(t.clone());
        }
        let all = self.all_gather(&flatten("all-gather", &[t])?)?;
        let mut shape = t.shape().to_vec();
        match shape.first_mut() {
            Some(rows) => *rows *= self.world(),
            None => shape = vec![all.len()],
        }
        Tensor::from_vec(all, &shape)
    }

    /// Reduces `tensors` over the ranks in place, as one bucket.
    fn all_reduce_tensors(&mut self, tensors: &[&Tensor], op: Reduce) -> Result<()> {
        if self.world() == 1 {
            return Ok(());
        }
        let mut flat = flatten("all-reduce", tensors)?;
        self.all_reduce(&mut flat, op)?;
        scatter("all-reduce", tensors, &flat, 1.0)
    }

    /// The sum over the ranks of `t` (rows a multiple of the world), of which this rank keeps
    /// its block of rows.
    fn reduce_scatter_tensor(&mut self, t: &Tensor) -> Result<Tensor> {
        if self.world() == 1 {
            return Ok(t.clone());
        }
        let w = self.world();
        let mut shape = t.shape().to_vec();
        match shape.first_mut() {
            Some(rows) if *rows % w == 0 => *rows /= w,
            _ => {
                return Err(Error(format!("reduce-scatter of shape {:?} over {w} ranks: rows must divide", t.shape())))
            }
        }
        let own = self.reduce_scatter(&flatten("reduce-scatter", &[t])?)?;
        Tensor::from_vec(own, &shape)
    }

    fn barrier(&mut self) -> Result<()> {
        self.all_reduce(&mut [0.0], Reduce::Sum)
    }
    /// A sum whose values travel as f16 (gradient compression: half the bytes): each rank's
    /// values rounded to f16, summed in f32 in rank order, the sum rounded to f16. This
    /// default has those numbers without the saving; [`TcpComm`] sends 2-byte values.
    fn all_reduce_f16(&mut self, buf: &mut [f32]) -> Result<()> {
        round_f16(buf);
        self.all_reduce(buf, Reduce::Sum)?;
        round_f16(buf);
        Ok(())
    }
}

/// The values of host `tensors` end to end, a collective's bucket (a GPU's tensors need the
/// GPU communicator).
pub fn flatten(op: &str, tensors: &[&Tensor]) -> Result<Vec<f32>> {
    let mut flat = Vec::new();
    for t in tensors {
        if t.device() != Device::Cpu {
            let why = format!("{op}: {} tensors between ranks need the NCCL communicator (attachGpu)", t.device());
            return Err(Error(why));
        }
        flat.extend_from_slice(&t.f32s(op)?);
    }
    Ok(flat)
}

/// Writes the bucket `flat · scale` back into `tensors`, in order.
pub fn scatter(op: &str, tensors: &[&Tensor], flat: &[f32], scale: f32) -> Result<()> {
    let mut at = 0;
    for t in tensors {
        let mut dst = t.f32s_mut(op)?;
        let n = dst.len();
        dst.iter_mut().zip(&flat[at..at + n]).for_each(|(d, &s)| *d = s * scale);
        at += n;
    }
    Ok(())
}

/// Rounds every value to the nearest f16 (ties to even), in place.
pub fn round_f16(buf: &mut [f32]) {
    buf.iter_mut().for_each(|v| *v = half::f16::from_f32(*v).to_f32());
}
