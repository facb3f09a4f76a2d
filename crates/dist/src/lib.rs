//! maskfr-dist: what ranks say to each other. The [`Communicator`] interface (NCCL will
//! implement it on GPUs) and [`TcpComm`], its CPU implementation for ranks that are separate
//! processes: a star over TCP with rank 0 at the centre, reductions summed in rank order so
//! results are deterministic, and every wait bounded so a dead or stalled rank becomes an
//! error naming it, never a hang.

mod partial_fc;
mod queue;
mod tcp;

pub use partial_fc::{sampled_classes, shard, PartialFc, Step};
pub use queue::CommQueue;
pub use tcp::TcpComm;

pub use maskfr_core::Failure as Error;

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

/// Rounds every value to the nearest f16 (ties to even), in place.
pub fn round_f16(buf: &mut [f32]) {
    buf.iter_mut().for_each(|v| *v = half::f16::from_f32(*v).to_f32());
}
