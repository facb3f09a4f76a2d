//! The sharded (model-parallel) margin-softmax classifier, arcface_torch's partial FC: each
//! rank owns a slice of the class centres; embeddings and labels are all-gathered, every
//! rank scores the whole global batch against its slice, the softmax is made global by
//! all-reducing the row maxima and exp-sums, and the embedding gradient is summed over the
//! ranks and handed back to each owner's rows. The result does not depend on the world size.

use crate::{Communicator, Reduce, Result};
use maskfr_core::kernels::gemm::{matmul, Mat};
use maskfr_core::kernels::loss::{target_cos, target_slope};
use maskfr_core::kernels::reduce::{l2_normalize, l2_normalize_backward};

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
}

fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
        let mut cos = vec![0f32; b * n];
        matmul(Mat::new(&en, b, d), Mat::t(&wn, n, d), &mut cos, false, true);
        // Logits with the margin on the targets this shard owns.
        let local = |i: usize| usize::try_from(y[i] - self.start as i64).ok().and_then(|j| cols.binary_search(&j).ok());
        let mut z = vec![0f64; b * n];
        let mut target = vec![0f32; b];
        for i in 0..b {
            for j in 0..n {
                let c = (cos[i * n + j] as f64).clamp(-1.0, 1.0);
                z[i * n + j] = self.s * if local(i) == Some(j) { target_cos(c, self.m_arc) - self.m_cos } else { c };
            }
            if let Some(j) = local(i) {
                target[i] = z[i * n + j] as f32;
            }
        }
        // The global softmax: row maxima, then exp-sums, over every shard.
        let mut max: Vec<f32> =
            (0..b).map(|i| z[i * n..(i + 1) * n].iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v)) as f32).collect();
        comm.all_reduce(&mut max, Reduce::Max)?;
        let mut sum: Vec<f32> = (0..b)
            .map(|i| z[i * n..(i + 1) * n].iter().map(|&v| (v - max[i] as f64).exp()).sum::<f64>() as f32)
            .collect();
        comm.all_reduce(&mut sum, Reduce::Sum)?;
        comm.all_reduce(&mut target, Reduce::Sum)?;
        let loss = (0..b).map(|i| max[i] as f64 + (sum[i] as f64).ln() - target[i] as f64).sum::<f64>() / b as f64;
        // d loss / d cos = s · slope · (p − onehot) / B.
        let mut gcos = vec![0f32; b * n];
        for i in 0..b {
            for j in 0..n {
                let p = (z[i * n + j] - max[i] as f64).exp() / sum[i] as f64;
                let c = cos[i * n + j] as f64;
                let is_target = local(i) == Some(j);
                let slope = if c.abs() > 1.0 {
                    0.0
                } else if is_target {
                    target_slope(c, self.m_arc)
                } else {
                    1.0
                };
                gcos[i * n + j] = (self.s * slope * (p - f64::from(u8::from(is_target))) / b as f64) as f32;
            }
        }
        let mut gwn = vec![0f32; n * d];
        matmul(Mat::t(&gcos, b, n), Mat::new(&en, b, d), &mut gwn, false, true);
        let mut gen = vec![0f32; b * d];
        matmul(Mat::new(&gcos, b, n), Mat::new(&wn, n, d), &mut gen, false, true);
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
