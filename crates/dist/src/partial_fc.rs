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
    /// Forward and backward of the mean margin-softmax loss of the global batch.
    pub fn step(
        &self,
        comm: &mut dyn Communicator,
        weight: &[f32],
        embeddings: &[f32],
        labels: &[i32],
    ) -> Result<Step> {
        let (d, n) = (self.dim, self.classes);
        let b_local = labels.len();
        let e = comm.all_gather(embeddings)?;
        let y: Vec<i64> =
            comm.all_gather(&labels.iter().map(|&l| l as f32).collect::<Vec<_>>())?.iter().map(|&l| l as i64).collect();
        let b = y.len();
        let (mut en, mut wn) = (vec![0f32; e.len()], vec![0f32; weight.len()]);
        l2_normalize(d, 1e-12, &e, &mut en);
        l2_normalize(d, 1e-12, weight, &mut wn);
        let mut cos = vec![0f32; b * n];
        matmul(Mat::new(&en, b, d), Mat::t(&wn, n, d), &mut cos, false, true);
        // Logits with the margin on the targets this shard owns.
        let local = |i: usize| usize::try_from(y[i] - self.start as i64).ok().filter(|&j| j < n);
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
        let mut grad_weight = vec![0f32; n * d];
        l2_normalize_backward(d, 1e-12, &gwn, weight, &mut grad_weight);
        Ok(Step { loss, grad_embeddings, grad_weight })
    }
}
