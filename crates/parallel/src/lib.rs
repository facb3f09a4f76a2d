//! maskfr-parallel: what ranks say to each other. The [`Communicator`] interface (NCCL will
//! implement it on GPUs) and [`TcpComm`], its CPU implementation for ranks that are separate
//! processes: a star over TCP with rank 0 at the centre, reductions summed in rank order so
//! results are deterministic, and every wait bounded so a dead or stalled rank becomes an
//! error naming it, never a hang.

mod partial_fc;
mod queue;
mod tcp;

pub use partial_fc::{shard, PartialFc, Step};
pub use queue::CommQueue;
pub use tcp::TcpComm;

pub use maskfr_core::Error;
use maskfr_core::{Device, Tensor};

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    Sum,
    Max,
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
        Tensor::from_vec(all, &shape).map_err(|e| Error(e.to_string()))
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
        Tensor::from_vec(own, &shape).map_err(|e| Error(e.to_string()))
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
        flat.extend_from_slice(&t.f32s(op).map_err(|e| Error(e.to_string()))?);
    }
    Ok(flat)
}

/// Writes the bucket `flat · scale` back into `tensors`, in order.
pub fn scatter(op: &str, tensors: &[&Tensor], flat: &[f32], scale: f32) -> Result<()> {
    let mut at = 0;
    for t in tensors {
        let mut dst = t.f32s_mut(op).map_err(|e| Error(e.to_string()))?;
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
