//! The combined margin (CosFace / ArcFace) on cosine logits, and the sharded margin
//! softmax's per-chunk statistics, totals, loss and gradient.

use crate::Float;
use rayon::prelude::*;

/// The combined margin (arcface_torch's CosFace / ArcFace family): logits `s·cos θ_j` off
/// target, `s·(cos(θ_y + m_arc) − m_cos)` on target, cosines clamped to [−1, 1]. Past
/// `θ + m_arc > π` ArcFace's usual fallback `cos θ − m_arc·sin m_arc` keeps the target
/// logit decreasing in θ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Margin {
    pub s: f64,
    pub m_arc: f64,
    pub m_cos: f64,
}

impl Margin {
    pub fn logit(&self, c: f64, is_target: bool) -> f64 {
        let c = c.clamp(-1.0, 1.0);
        self.s * if is_target { target_cos(c, self.m_arc) - self.m_cos } else { c }
    }

    /// d logit / d cos (zero where the cosine was clamped).
    pub fn slope(&self, c: f64, is_target: bool) -> f64 {
        self.s
            * if c.abs() > 1.0 {
                0.0
            } else if is_target {
                target_slope(c, self.m_arc)
            } else {
                1.0
            }
    }
}

/// Margin logits from cosines `[R, K]`, the target of row `i` in column `labels[i]`.
pub fn margin_logits<T: Float>(k: usize, cos: &[T], labels: &[usize], m: Margin, out: &mut [T]) {
    out.par_chunks_mut(k).zip(cos.par_chunks(k)).enumerate().for_each(|(i, (o, c))| {
        for (j, (o, &c)) in o.iter_mut().zip(c).enumerate() {
            *o = T::c(m.logit(c.f64(), j == labels[i]));
        }
    });
}

/// The target cosine after the angular margin (with ArcFace's fallback past θ + m > π).
pub fn target_cos(c: f64, m: f64) -> f64 {
    if m == 0.0 {
        c
    } else if c > (std::f64::consts::PI - m).cos() {
        c * m.cos() - (1.0 - c * c).max(0.0).sqrt() * m.sin()
    } else {
        c - m * m.sin()
    }
}

/// d(target_cos)/dc.
pub fn target_slope(c: f64, m: f64) -> f64 {
    if m == 0.0 || c <= (std::f64::consts::PI - m).cos() {
        1.0
    } else {
        m.cos() + c / (1.0 - c * c).max(1e-12).sqrt() * m.sin()
    }
}

/// Gradient of [`margin_logits`] with respect to the cosines.
pub fn margin_logits_backward<T: Float>(k: usize, gy: &[T], cos: &[T], labels: &[usize], m: Margin, gx: &mut [T]) {
    gx.par_chunks_mut(k).zip(gy.par_chunks(k).zip(cos.par_chunks(k))).enumerate().for_each(|(i, (gr, (gyr, cr)))| {
        for (j, (g, (&gy, &c))) in gr.iter_mut().zip(gyr.iter().zip(cr)).enumerate() {
            *g = T::c(m.slope(c.f64(), j == labels[i]) * gy.f64());
        }
    });
}

// The sharded margin softmax (maskfr-parallel's PartialFc) scores a shard's classes a chunk at a
// time: cosines `cos [B, w]` of the scored columns `[j0, j0 + w)`; `target[i]` is row i's
// target column among the scored ones, −1 when its class lives on another rank.

/// Folds a chunk's logits into each row's running maximum `max`, its max-shifted exp-sum
/// `sum` (rescaled when the maximum grows) and, when the target column is in the chunk, its
/// logit `tlogit`.
#[allow(clippy::too_many_arguments)]
pub fn margin_chunk_stats<T: Float>(
    w: usize,
    cos: &[T],
    target: &[i32],
    j0: usize,
    m: Margin,
    max: &mut [T],
    sum: &mut [T],
    tlogit: &mut [T],
) {
    if w == 0 {
        return; // no columns: nothing to fold in (par_chunks(0) would panic)
    }
    (max, sum, tlogit).into_par_iter().zip(cos.par_chunks(w)).enumerate().for_each(|(i, ((mx, sm, t), row))| {
        let is_t = |k: usize| (j0 + k) as i64 == target[i] as i64;
        let z = |k: usize, c: T| m.logit(c.f64(), is_t(k));
        let old = mx.f64();
        // The maximum as it will be stored, so the exp-sum is relative to exactly that.
        let top = T::c(row.iter().enumerate().fold(old, |a, (k, &c)| a.max(z(k, c)))).f64();
        let acc: f64 = row.iter().enumerate().map(|(k, &c)| (z(k, c) - top).exp()).sum();
        *sm = T::c(sm.f64() * (old - top).exp() + acc);
        *mx = T::c(top);
        if let Some(k) = usize::try_from(target[i]).ok().and_then(|t| t.checked_sub(j0)).filter(|&k| k < w) {
            *t = T::c(z(k, row[k]));
        }
    });
}

/// Each row's exp-sum shifted to the global maximum: `sum·exp(max − gmax)`.
pub fn margin_softmax_total<T: Float>(max: &[T], sum: &[T], gmax: &[T], out: &mut [T]) {
    for (o, ((&m, &s), &g)) in out.iter_mut().zip(max.iter().zip(sum).zip(gmax)) {
        *o = T::c(s.f64() * (m.f64() - g.f64()).exp());
    }
}

/// The mean loss over the rows: `gmax + ln gsum − target logit`.
pub fn margin_softmax_loss<T: Float>(gmax: &[T], gsum: &[T], tlogit: &[T]) -> f64 {
    let total: f64 = gmax.iter().zip(gsum).zip(tlogit).map(|((m, s), t)| m.f64() + s.f64().ln() - t.f64()).sum();
    total / gmax.len() as f64
}

/// d loss / d cos for a chunk: `slope·(p − onehot)/B` with the global softmax
/// `p = exp(z − gmax)/gsum`.
#[allow(clippy::too_many_arguments)]
pub fn margin_chunk_grad<T: Float>(
    w: usize,
    cos: &[T],
    target: &[i32],
    j0: usize,
    m: Margin,
    gmax: &[T],
    gsum: &[T],
    g: &mut [T],
) {
    let b = target.len() as f64;
    g.par_chunks_mut(w).zip(cos.par_chunks(w)).enumerate().for_each(|(i, (gr, row))| {
        for (k, (gv, &c)) in gr.iter_mut().zip(row).enumerate() {
            let is_t = (j0 + k) as i64 == target[i] as i64;
            let p = (m.logit(c.f64(), is_t) - gmax[i].f64()).exp() / gsum[i].f64();
            *gv = T::c(m.slope(c.f64(), is_t) * (p - f64::from(u8::from(is_t))) / b);
        }
    });
}
