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

/// Rank `rank`'s classes: `⌊C/W⌋ + [rank < C mod W]` of them from `⌊C/W⌋·rank + min(rank, C mod W)`.
pub fn shard(classes: usize, world: usize, rank: usize) -> (usize, usize) {
    let (q, r) = (classes / world, classes % world);
    (q * rank + rank.min(r), q + usize::from(rank < r))
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
    /// The shard classes scored at `step`: the positives among `labels` (global), then
    /// seeded random negatives up to ⌈ρ·classes⌉, in ascending class order.
    pub fn sampled(&self, labels: &[i64], step: u64) -> Vec<usize> {
        let n = self.classes;
        let mut keep = vec![false; n];
        labels
            .iter()
            .filter_map(|&l| usize::try_from(l - self.start as i64).ok().filter(|&j| j < n))
            .for_each(|j| keep[j] = true);
        let want = ((self.sample_rate * n as f64).ceil() as usize).min(n);
        let mut negatives: Vec<usize> = (0..n).filter(|&j| !keep[j]).collect();
        let seed = mix(mix(self.seed, step), self.start as u64);
        for i in (1..negatives.len()).rev() {
            negatives.swap(i, (mix(seed, i as u64) % (i as u64 + 1)) as usize);
        }
        let extra = want.saturating_sub(keep.iter().filter(|&&k| k).count());
        negatives.into_iter().take(extra).for_each(|j| keep[j] = true);
        (0..n).filter(|&j| keep[j]).collect()
    }

    /// Forward and backward of the mean margin-softmax loss of the global batch at `step`.
    pub fn step(
        &self,
        comm: &mut dyn Communicator,
        weight: &[f32],
        embeddings: &[f32],
        labels: &[i32],
        step: u64,
    ) -> Result<Step> {
        let d = self.dim;
        let b_local = labels.len();
        let e = comm.all_gather(embeddings)?;
        let y: Vec<i64> =
            comm.all_gather(&labels.iter().map(|&l| l as f32).collect::<Vec<_>>())?.iter().map(|&l| l as i64).collect();
        let b = y.len();
        // The scored classes and their weights; labels remapped to positions among them.
        let cols = self.sampled(&y, step);
        let n = cols.len();
        let sub: Vec<f32> = cols.iter().flat_map(|&j| weight[j * d..(j + 1) * d].iter().copied()).collect();
        let (mut en, mut wn) = (vec![0f32; e.len()], vec![0f32; sub.len()]);
        l2_normalize(d, 1e-12, &e, &mut en);
        l2_normalize(d, 1e-12, &sub, &mut wn);
        let local = |i: usize| usize::try_from(y[i] - self.start as i64).ok().and_then(|j| cols.binary_search(&j).ok());
        // Cosines and margined logits of classes [j0, j1): the B×n matrix never exists whole.
        let chunk = if self.chunk == 0 { n.max(1) } else { self.chunk };
        let logits = |j0: usize, j1: usize| -> (Vec<f32>, Vec<f64>) {
            let w = j1 - j0;
            let mut cos = vec![0f32; b * w];
            matmul(Mat::new(&en, b, d), Mat::t(&wn[j0 * d..j1 * d], w, d), &mut cos, false, true);
            let z = (0..b * w)
                .map(|k| {
                    let c = (cos[k] as f64).clamp(-1.0, 1.0);
                    self.s * if local(k / w) == Some(j0 + k % w) { target_cos(c, self.m_arc) - self.m_cos } else { c }
                })
                .collect();
            (cos, z)
        };
        // Forward: per row an online (max, Σexp) over the chunks, then the global softmax
        // through all-reduced maxima and rescaled exp-sums.
        let (mut max, mut sum, mut target) = (vec![f64::NEG_INFINITY; b], vec![0f64; b], vec![0f32; b]);
        for j0 in (0..n).step_by(chunk) {
            let j1 = (j0 + chunk).min(n);
            let (_, z) = logits(j0, j1);
            for i in 0..b {
                let row = &z[i * (j1 - j0)..(i + 1) * (j1 - j0)];
                let m = row.iter().fold(max[i], |m, &v| m.max(v));
                sum[i] = sum[i] * (max[i] - m).exp() + row.iter().map(|&v| (v - m).exp()).sum::<f64>();
                max[i] = m;
                if let Some(j) = local(i).filter(|j| (j0..j1).contains(j)) {
                    target[i] = row[j - j0] as f32;
                }
            }
        }
        let mut gmax: Vec<f32> = max.iter().map(|&m| m as f32).collect();
        comm.all_reduce(&mut gmax, Reduce::Max)?;
        let mut gsum: Vec<f32> = (0..b).map(|i| (sum[i] * (max[i] - gmax[i] as f64).exp()) as f32).collect();
        comm.all_reduce(&mut gsum, Reduce::Sum)?;
        comm.all_reduce(&mut target, Reduce::Sum)?;
        let loss = (0..b).map(|i| gmax[i] as f64 + (gsum[i] as f64).ln() - target[i] as f64).sum::<f64>() / b as f64;
        // Backward, chunk by chunk: d loss / d cos = s · slope · (p − onehot) / B.
        let mut gwn = vec![0f32; n * d];
        let mut gen = vec![0f32; b * d];
        for j0 in (0..n).step_by(chunk) {
            let j1 = (j0 + chunk).min(n);
            let w = j1 - j0;
            let (cos, z) = logits(j0, j1);
            let gcos: Vec<f32> = (0..b * w)
                .map(|k| {
                    let (i, j) = (k / w, j0 + k % w);
                    let p = (z[k] - gmax[i] as f64).exp() / gsum[i] as f64;
                    let c = cos[k] as f64;
                    let is_target = local(i) == Some(j);
                    let slope = if c.abs() > 1.0 {
                        0.0
                    } else if is_target {
                        target_slope(c, self.m_arc)
                    } else {
                        1.0
                    };
                    (self.s * slope * (p - f64::from(u8::from(is_target))) / b as f64) as f32
                })
                .collect();
            matmul(Mat::t(&gcos, b, w), Mat::new(&en, b, d), &mut gwn[j0 * d..j1 * d], false, true);
            matmul(Mat::new(&gcos, b, w), Mat::new(&wn[j0 * d..j1 * d], w, d), &mut gen, true, true);
        }
        // Every shard contributes to every embedding's gradient; each rank keeps its rows.
        let own = comm.reduce_scatter(&gen)?;
        let mut grad_embeddings = vec![0f32; b_local * d];
        l2_normalize_backward(d, 1e-12, &own, embeddings, &mut grad_embeddings);
        let mut gsub = vec![0f32; n * d];
        l2_normalize_backward(d, 1e-12, &gwn, &sub, &mut gsub);
        // Classes not scored this step get no gradient.
        let mut grad_weight = vec![0f32; weight.len()];
        for (k, &j) in cols.iter().enumerate() {
            grad_weight[j * d..(j + 1) * d].copy_from_slice(&gsub[k * d..(k + 1) * d]);
        }
        Ok(Step { loss, grad_embeddings, grad_weight })
    }
}
