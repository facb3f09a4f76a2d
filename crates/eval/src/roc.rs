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
