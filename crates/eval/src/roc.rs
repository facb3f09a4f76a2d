//! Operating points. At a target FMR f with N impostor pairs, at most k = ⌊f·N⌋ impostors
//! may score at or above the threshold; the largest ROC index with FMR ≤ f is the lowest
//! score strictly above the (k+1)-th highest impostor, so TAR counts the genuine scores
//! above that impostor (sklearn's `roc_curve` operating point, exactly, while that impostor
//! is within the exact top).

use crate::Impostors;

#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    pub fmr: f64,
    pub tar: f64,
    pub fnmr: f64,
    /// The acceptance threshold (scores ≥ it match); −∞ when every pair is accepted.
    pub threshold: f64,
    /// Impostor pairs behind the level and how many of them it lets match (⌊f·N⌋): below
    /// one the level cannot be measured on this set.
    pub impostors: u64,
    pub false_matches_allowed: u64,
    /// Whether the threshold rests on the exact top scores (else on a histogram bin).
    pub exact: bool,
}

/// The operating point at `fmr` for ascending `genuine` scores.
pub fn level(genuine: &[f32], imp: &Impostors, fmr: f64) -> Level {
    let k = (fmr * imp.count as f64).floor() as u64;
    let (tar, threshold, exact) = match imp.kth_highest(k + 1) {
        // Every impostor may match: the lowest threshold accepts everything.
        None => (1.0, f64::NEG_INFINITY, true),
        Some((s, exact)) => {
            let above = genuine.len() - genuine.partition_point(|&g| g <= s);
            // The threshold: the lowest score strictly above s, genuine or impostor (past the
            // exact top, s itself: a bin edge); +∞ when none is (the ROC's origin).
            let lowest_genuine = genuine.get(genuine.len() - above).copied();
            let lowest_impostor = if exact { imp.top().into_iter().rfind(|&v| v > s) } else { Some(s) };
            let t = [lowest_genuine, lowest_impostor].into_iter().flatten().fold(f32::INFINITY, f32::min);
            (above as f64 / genuine.len().max(1) as f64, t as f64, exact)
        }
    };
    Level { fmr, tar, fnmr: 1.0 - tar, threshold, impostors: imp.count, false_matches_allowed: k, exact }
}

/// TAR over a log-spaced FMR grid from 10^lo to 1 (`per_decade` points a decade), for plots.
pub fn curve(genuine: &[f32], imp: &Impostors, lo: i32, per_decade: usize) -> Vec<(f64, f64)> {
    let n = (-lo) as usize * per_decade;
    (0..=n)
        .map(|i| 10f64.powf(lo as f64 + i as f64 / per_decade as f64))
        .map(|f| (f, level(genuine, imp, f).tar))
        .collect()
}

/// A ROC curve as sklearn's `roc_curve(labels, scores)` returns it (default
/// `drop_intermediate`): thresholds at each distinct score, descending, with `+∞` first.
#[derive(Debug, Clone, PartialEq)]
pub struct Roc {
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
    pub thresholds: Vec<f64>,
}

/// sklearn's `roc_curve`: cumulative counts at the last position of each distinct score
/// (scores descending), points that are no corner of the curve (both counts' second
/// differences zero) dropped, and (0, 0) prepended at threshold +∞. Scores must be finite.
pub fn sklearn_roc(scores: &[f64], positive: &[bool]) -> Roc {
    use rayon::prelude::*;
    assert_eq!(scores.len(), positive.len(), "sklearn_roc: one label per score");
    // Sorted by value, not through indices (IJB-C's 15.7 M pairs: random reads dominate);
    // the order within equal scores is irrelevant, as each distinct score is one point.
    let mut sorted: Vec<(f64, bool)> = scores.iter().copied().zip(positive.iter().copied()).collect();
    sorted.par_sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tps, mut fps, mut thr) = (Vec::new(), Vec::new(), Vec::new());
    let mut tp = 0u64;
    for (k, &(s, pos)) in sorted.iter().enumerate() {
        tp += pos as u64;
        if sorted.get(k + 1).is_none_or(|n| n.0 != s) {
            tps.push(tp);
            fps.push(k as u64 + 1 - tp);
            thr.push(s);
        }
    }
    let n = tps.len();
    let corner = |i: usize| {
        let second = |v: &[u64]| v[i + 1] as i128 - 2 * v[i] as i128 + v[i - 1] as i128 != 0;
        i == 0 || i + 1 == n || second(&tps) || second(&fps)
    };
    let keep: Vec<usize> = if n > 2 { (0..n).filter(|&i| corner(i)).collect() } else { (0..n).collect() };
    let (p, f) = (tps.last().copied().unwrap_or(0) as f64, fps.last().copied().unwrap_or(0) as f64);
    let pick = |v: &[u64], total: f64| std::iter::once(0.0).chain(keep.iter().map(|&i| v[i] as f64 / total)).collect();
    Roc {
        fpr: pick(&fps, f),
        tpr: pick(&tps, p),
        thresholds: std::iter::once(f64::INFINITY).chain(keep.iter().map(|&i| thr[i])).collect(),
    }
}

/// The point insightface's `eval_ijbc.py` reads TPR@FPR `target` from: the kept FPR nearest
/// to it, ties to the highest TPR (it searches the flipped curve for the first minimum).
pub fn nearest(roc: &Roc, target: f64) -> usize {
    let mut best = 0;
    for (i, &f) in roc.fpr.iter().enumerate() {
        if (f - target).abs() <= (roc.fpr[best] - target).abs() {
            best = i;
        }
    }
    best
}
