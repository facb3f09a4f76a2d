//! The sharded (model-parallel) margin-softmax classifier, arcface_torch's partial FC: each
//! rank owns a slice of the class centres; embeddings and labels are all-gathered, every
//! rank scores the whole global batch against its slice, the softmax is made global by
//! all-reducing the row maxima and exp-sums, and the embedding gradient is summed over the
//! ranks and handed back to each owner's rows. The result does not depend on the world size.

use crate::{Communicator, Error, Reduce, Result};
use maskfr_core::random::mix;
use maskfr_core::{backend_for, Margin, Tensor};

/// Rank `rank`'s classes: `⌊C/W⌋ + [rank < C mod W]` of them from `⌊C/W⌋·rank + min(rank, C mod W)`.
pub fn shard(classes: usize, world: usize, rank: usize) -> (usize, usize) {
    let (q, r) = (classes / world, classes % world);
    (q * rank + rank.min(r), q + usize::from(rank < r))
}

/// The classes of the shard `[start, start + classes)` scored at `step` with sampling rate
/// ρ: the positives among `labels` (global), then seeded random negatives up to
/// ⌈ρ·classes⌉, as shard rows in ascending order: a pure function of its arguments.
fn sampled_classes(start: usize, classes: usize, rate: f64, seed: u64, labels: &[i64], step: u64) -> Vec<usize> {
    let n = classes;
    let mut keep = vec![false; n];
    labels
        .iter()
        .filter_map(|&l| usize::try_from(l - start as i64).ok().filter(|&j| j < n))
        .for_each(|j| keep[j] = true);
    let want = ((rate * n as f64).ceil() as usize).min(n);
    let mut negatives: Vec<usize> = (0..n).filter(|&j| !keep[j]).collect();
    let seed = mix(mix(seed, step), start as u64);
    for i in (1..negatives.len()).rev() {
        negatives.swap(i, (mix(seed, i as u64) % (i as u64 + 1)) as usize);
    }
    let extra = want.saturating_sub(keep.iter().filter(|&&k| k).count());
    negatives.into_iter().take(extra).for_each(|j| keep[j] = true);
    (0..n).filter(|&j| keep[j]).collect()
}

/// The shard's classes and the embedding width `(n, D)` of `weight [n, D]` and
/// `embeddings [b, D]` with `labels` b labels, both on one device.
pub fn shard_dims(weight: &Tensor, embeddings: &Tensor, labels: usize) -> Result<(usize, usize)> {
    let (ws, es) = (weight.shape(), embeddings.shape());
    if ws.len() != 2 || es.len() != 2 || ws[1] != es[1] || es[0] != labels {
        return Err(Error(format!(
            "partialFc: weight {ws:?} and embeddings {es:?} with {labels} labels: need [n, D], [b, D], b labels"
        )));
    }
    if weight.device() != embeddings.device() {
        let why =
            format!("partialFc: the shard is on {} but the embeddings on {}", weight.device(), embeddings.device());
        return Err(Error(why));
    }
    Ok((ws[0], ws[1]))
}

pub struct PartialFc {
    /// First class of this rank's shard and the shard's size.
    pub start: usize,
    pub classes: usize,
    /// Every rank's classes together (labels must lie in `[0, total)`).
    pub total: usize,
    pub dim: usize,
    pub margin: Margin,
    /// Negative-class sampling rate ρ: every positive class of the global batch plus random
    /// negatives up to ρ·classes take part in a step; 1 scores the whole shard.
    pub sample_rate: f64,
    pub seed: u64,
    /// Classes scored at a time (0: all): memory is B × chunk, not B × n_r.
    pub chunk: usize,
}

/// One step's results, on the device of the shard.
pub struct Step {
    /// The mean loss over the global batch (the same on every rank), 0-d.
    pub loss: Tensor,
    /// Gradient of this rank's own embeddings `[b, dim]`.
    pub grad_embeddings: Tensor,
    /// Gradient of this rank's shard `[classes, dim]` (zero rows for classes not scored).
    pub grad_weight: Tensor,
}

impl PartialFc {
    /// This rank's labels must lie in `[0, total)`: checked before any collective, so a bad
    /// batch is an error on its rank, not a silently wrong loss.
    pub fn check_labels(&self, labels: &[i32]) -> Result<()> {
        match labels.iter().position(|&l| l < 0 || l as usize >= self.total) {
            Some(i) => Err(Error(format!(
                "partialFc: label {} at row {i} is outside the classes [0, {})",
                labels[i], self.total
            ))),
            None => Ok(()),
        }
    }

    /// The shard classes scored at `step` ([`sampled_classes`] of this shard).
    pub fn sampled(&self, labels: &[i64], step: u64) -> Vec<usize> {
        sampled_classes(self.start, self.classes, self.sample_rate, self.seed, labels, step)
    }

    /// Forward and backward of the mean margin-softmax loss of the global batch at `step`,
    /// on the device of `weight [classes, dim]` and `embeddings [b, dim]` (the communicator
    /// moves that device's tensors). Nothing is read back to the host: a GPU runs the whole
    /// step on its stream. Memory beyond the shard and its gradient is a few `chunk × D`
    /// and `B × chunk` buffers.
    pub fn step(
        &self,
        comm: &mut dyn Communicator,
        weight: &Tensor,
        embeddings: &Tensor,
        labels: &[i32],
        step: u64,
    ) -> Result<Step> {
        self.check_labels(labels)?;
        let be = backend_for("partialFc", &[weight, embeddings])?;
        let e = comm.all_gather_tensor(embeddings)?;
        let y: Vec<i64> = comm.all_gather_i32(labels)?.into_iter().map(i64::from).collect();
        let b = y.len();
        let cols = self.sampled(&y, step);
        let n = cols.len();
        let en = be.l2_normalize(&e, 1e-12)?;
        // Each row's target among the scored columns (−1: another rank's class).
        let target: Vec<i32> = y
            .iter()
            .map(|&l| {
                usize::try_from(l - self.start as i64)
                    .ok()
                    .and_then(|j| cols.binary_search(&j).ok())
                    .map_or(-1, |k| k as i32)
            })
            .collect();
        let chunk = if self.chunk == 0 { n.max(1) } else { self.chunk };
        let chunks: Vec<(usize, Vec<i32>)> = (0..n)
            .step_by(chunk)
            .map(|j0| (j0, cols[j0..(j0 + chunk).min(n)].iter().map(|&j| j as i32).collect()))
            .collect();
        // Scored columns: their centres (raw, normalised) and cosines. Recomputed in the
        // backward rather than kept: nothing is ever n × D or B × n.
        let scores = |rows: &[i32]| -> Result<(Tensor, Tensor, Tensor)> {
            let raw = be.index_rows(weight, rows)?;
            let wn = be.l2_normalize(&raw, 1e-12)?;
            let cos = be.matmul(&en, &wn, false, true)?;
            Ok((raw, wn, cos))
        };
        // Forward: per row an online (max, Σexp) over the chunks, then the global softmax
        // through all-reduced maxima and rescaled exp-sums.
        let full = |v: f32| be.full(&[b], v);
        let (max, sum, tlogit) = (full(f32::NEG_INFINITY)?, full(0.0)?, full(0.0)?);
        for (j0, rows) in &chunks {
            let (_, _, cos) = scores(rows)?;
            be.margin_chunk_stats(&cos, &target, *j0, self.margin, [&max, &sum, &tlogit])?;
        }
        let gmax = be.scale(&max, 1.0)?;
        comm.all_reduce_tensors(&[&gmax], Reduce::Max)?;
        let gsum = be.margin_softmax_total(&max, &sum, &gmax)?;
        comm.all_reduce_tensors(&[&gsum, &tlogit], Reduce::Sum)?;
        let loss = be.margin_softmax_loss(&gmax, &gsum, &tlogit)?;
        // Backward, chunk by chunk: each chunk's centre gradient goes straight to its rows of
        // the shard's gradient; the embeddings' gradient sums over the chunks.
        let gen = be.full(&[b, self.dim], 0.0)?;
        let grad_weight = be.full(weight.shape(), 0.0)?;
        for (j0, rows) in &chunks {
            let (raw, wn, cos) = scores(rows)?;
            let gcos = be.margin_chunk_grad(&cos, &target, *j0, self.margin, [&gmax, &gsum])?;
            let gwn = be.matmul(&gcos, &en, true, false)?;
            be.add_scaled_(&gen, &be.matmul(&gcos, &wn, false, false)?, 1.0)?;
            let graw = be.l2_normalize_backward(&gwn, &raw, 1e-12)?;
            be.copy_rows_(&grad_weight, rows, &graw)?;
        }
        // Every shard contributes to every embedding's gradient; each rank keeps its rows.
        let own = comm.reduce_scatter_tensor(&gen)?;
        let grad_embeddings = be.l2_normalize_backward(&own, embeddings, 1e-12)?;
        Ok(Step { loss, grad_embeddings, grad_weight })
    }
}
