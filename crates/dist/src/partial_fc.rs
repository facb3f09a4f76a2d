//! The sharded (model-parallel) margin-softmax classifier, arcface_torch's partial FC: each
//! rank owns a slice of the class centres; embeddings and labels are all-gathered, every
//! rank scores the whole global batch against its slice, the softmax is made global by
//! all-reducing the row maxima and exp-sums, and the embedding gradient is summed over the
//! ranks and handed back to each owner's rows. The result does not depend on the world size.

use crate::{Communicator, Reduce, Result};
use maskfr_core::kernels::gemm::{matmul, Mat};
use maskfr_core::kernels::loss::{target_cos, target_slope};
use maskfr_core::kernels::reduce::{l2_normalize, l2_normalize_backward};
use maskfr_core::random::mix;
use rayon::prelude::*;

/// Rank `rank`'s classes: `⌊C/W⌋ + [rank < C mod W]` of them from `⌊C/W⌋·rank + min(rank, C mod W)`.
pub fn shard(classes: usize, world: usize, rank: usize) -> (usize, usize) {
    let (q, r) = (classes / world, classes % world);
    (q * rank + rank.min(r), q + usize::from(rank < r))
}

/// The classes of the shard `[start, start + classes)` scored at `step` with sampling rate
/// ρ: the positives among `labels` (global), then seeded random negatives up to
/// ⌈ρ·classes⌉, as shard rows in ascending order. A pure function of its arguments, so a GPU
/// computing the same loss in tensor ops samples the same classes.
pub fn sampled_classes(start: usize, classes: usize, rate: f64, seed: u64, labels: &[i64], step: u64) -> Vec<usize> {
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

pub struct PartialFc {
    /// First class of this rank's shard and the shard's size.
    pub start: usize,
    pub classes: usize,
    pub dim: usize,
    pub s: f64,
    pub m_arc: f64,
    pub m_cos: f64,
    /// Negative-class sampling rate ρ: every positive class of the global batch plus random
    /// negatives up to ρ·classes take part in a step; 1 scores the whole shard.
    pub sample_rate: f64,
    pub seed: u64,
    /// Classes scored at a time (0: all): memory is B × chunk, not B × n_r.
    pub chunk: usize,
}

pub struct Step {
    /// The mean loss over the global batch (the same on every rank).
    pub loss: f64,
    /// Gradient of this rank's own embeddings `[b, dim]`.
    pub grad_embeddings: Vec<f32>,
    /// Gradient of this rank's shard `[classes, dim]`.
    pub grad_weight: Vec<f32>,
}

impl PartialFc {
    /// The shard classes scored at `step` ([`sampled_classes`] of this shard).
    pub fn sampled(&self, labels: &[i64], step: u64) -> Vec<usize> {
        sampled_classes(self.start, self.classes, self.sample_rate, self.seed, labels, step)
    }

    /// Forward and backward of the mean margin-softmax loss of the global batch at `step`.
    /// Memory beyond the shard and its gradient is a few `chunk × D` and `B × chunk` buffers.
    pub fn step(
        &self,
        comm: &mut dyn Communicator,
        weight: &[f32],
        embeddings: &[f32],
        labels: &[i32],
        step: u64,
    ) -> Result<Step> {
        let d = self.dim;
        let e = comm.all_gather(embeddings)?;
        let y: Vec<i64> =
            comm.all_gather(&labels.iter().map(|&l| l as f32).collect::<Vec<_>>())?.iter().map(|&l| l as i64).collect();
        let b = y.len();
        let cols = self.sampled(&y, step);
        let n = cols.len();
        let mut en = vec![0f32; e.len()];
        l2_normalize(d, 1e-12, &e, &mut en);
        // Each row's target among the scored columns (None: another rank's class).
        let target: Vec<Option<usize>> = y
            .iter()
            .map(|&l| usize::try_from(l - self.start as i64).ok().and_then(|j| cols.binary_search(&j).ok()))
            .collect();
        let chunk = if self.chunk == 0 { n.max(1) } else { self.chunk };
        // Scored columns [j0, j1): their centres (raw, normalised), cosines and margined
        // logits. Recomputed in the backward rather than kept: nothing is ever n × D or B × n.
        let scores = |j0: usize, j1: usize| {
            let w = j1 - j0;
            let raw: Vec<f32> = cols[j0..j1].iter().flat_map(|&j| weight[j * d..(j + 1) * d].iter().copied()).collect();
            let mut wn = vec![0f32; raw.len()];
            l2_normalize(d, 1e-12, &raw, &mut wn);
            let mut cos = vec![0f32; b * w];
            matmul(Mat::new(&en, b, d), Mat::t(&wn, w, d), &mut cos, false, true);
            let mut z = vec![0f64; b * w];
            z.par_chunks_mut(w).zip(cos.par_chunks(w)).enumerate().for_each(|(i, (zr, cr))| {
                for (k, (zv, &c)) in zr.iter_mut().zip(cr).enumerate() {
                    let c = (c as f64).clamp(-1.0, 1.0);
                    *zv = self.s * if target[i] == Some(j0 + k) { target_cos(c, self.m_arc) - self.m_cos } else { c };
                }
            });
            (raw, wn, cos, z)
        };
        // Forward: per row an online (max, Σexp) over the chunks, then the global softmax
        // through all-reduced maxima and rescaled exp-sums.
        let (mut max, mut sum, mut tz) = (vec![f64::NEG_INFINITY; b], vec![0f64; b], vec![0f32; b]);
        for j0 in (0..n).step_by(chunk) {
            let j1 = (j0 + chunk).min(n);
            let (_, _, _, z) = scores(j0, j1);
            let rows = z.par_chunks(j1 - j0);
            (&mut max[..], &mut sum[..], &mut tz[..]).into_par_iter().zip(rows).enumerate().for_each(
                |(i, ((mx, sm, t), row))| {
                    let m = row.iter().fold(*mx, |m, &v| m.max(v));
                    *sm = *sm * (*mx - m).exp() + row.iter().map(|&v| (v - m).exp()).sum::<f64>();
                    *mx = m;
                    if let Some(j) = target[i].filter(|j| (j0..j1).contains(j)) {
                        *t = row[j - j0] as f32;
                    }
                },
            );
        }
        let mut gmax: Vec<f32> = max.iter().map(|&m| m as f32).collect();
        comm.all_reduce(&mut gmax, Reduce::Max)?;
        let mut gsum: Vec<f32> = (0..b).map(|i| (sum[i] * (max[i] - gmax[i] as f64).exp()) as f32).collect();
        comm.all_reduce(&mut gsum, Reduce::Sum)?;
        comm.all_reduce(&mut tz, Reduce::Sum)?;
        let loss = (0..b).map(|i| gmax[i] as f64 + (gsum[i] as f64).ln() - tz[i] as f64).sum::<f64>() / b as f64;
        // Backward, chunk by chunk: d loss / d cos = s · slope · (p − onehot) / B; each
        // chunk's centre gradient goes straight to its rows of the shard's gradient.
        let mut gen = vec![0f32; b * d];
        let mut grad_weight = vec![0f32; weight.len()];
        for j0 in (0..n).step_by(chunk) {
            let j1 = (j0 + chunk).min(n);
            let w = j1 - j0;
            let (raw, wn, cos, z) = scores(j0, j1);
            let mut gcos = vec![0f32; b * w];
            gcos.par_chunks_mut(w).zip(z.par_chunks(w).zip(cos.par_chunks(w))).enumerate().for_each(
                |(i, (g, (zr, cr)))| {
                    for (k, gv) in g.iter_mut().enumerate() {
                        let p = (zr[k] - gmax[i] as f64).exp() / gsum[i] as f64;
                        let c = cr[k] as f64;
                        let is_target = target[i] == Some(j0 + k);
                        let slope = if c.abs() > 1.0 {
                            0.0
                        } else if is_target {
                            target_slope(c, self.m_arc)
                        } else {
                            1.0
                        };
                        *gv = (self.s * slope * (p - f64::from(u8::from(is_target))) / b as f64) as f32;
                    }
                },
            );
            let mut gwn = vec![0f32; w * d];
            matmul(Mat::t(&gcos, b, w), Mat::new(&en, b, d), &mut gwn, false, true);
            matmul(Mat::new(&gcos, b, w), Mat::new(&wn, w, d), &mut gen, true, true);
            let mut graw = vec![0f32; w * d];
            l2_normalize_backward(d, 1e-12, &gwn, &raw, &mut graw);
            // Classes not scored this step keep a zero gradient.
            for (k, &j) in cols[j0..j1].iter().enumerate() {
                grad_weight[j * d..(j + 1) * d].copy_from_slice(&graw[k * d..(k + 1) * d]);
            }
        }
        // Every shard contributes to every embedding's gradient; each rank keeps its rows.
        let own = comm.reduce_scatter(&gen)?;
        let mut grad_embeddings = vec![0f32; labels.len() * d];
        l2_normalize_backward(d, 1e-12, &own, embeddings, &mut grad_embeddings);
        Ok(Step { loss, grad_embeddings, grad_weight })
    }
}
