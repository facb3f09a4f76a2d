//! 1:1 verification bindings (maskfr-eval): all-vs-all and probe-vs-gallery scoring of
//! embeddings into operating points and a ROC curve.

use maskfr_eval::{curve, level, score_all_vs_all, score_cross, Keep, Level, Scores, Set};
use napi::bindgen_prelude::*;
use napi_derive::napi;

#[napi(object)]
pub struct OneToOneOptions {
    /// FMR levels to report (e.g. 1e-1 … 1e-6).
    pub fmrs: Vec<f64>,
    /// Histogram bins over [−1, 1] and exact top impostor scores kept.
    pub bins: u32,
    pub top: u32,
    /// The curve's FMR grid: from 10^curveFrom to 1, `perDecade` points a decade.
    pub curve_from: i32,
    pub per_decade: u32,
}

#[napi(object)]
pub struct OperatingPoint {
    pub fmr: f64,
    pub tar: f64,
    pub fnmr: f64,
    pub threshold: f64,
    pub impostors: f64,
    pub false_matches_allowed: f64,
    pub exact: bool,
}

#[napi(object)]
pub struct OneToOneResult {
    pub genuine: f64,
    pub impostors: f64,
    pub levels: Vec<OperatingPoint>,
    /// `[fmr, tar]` pairs.
    pub curve: Vec<Vec<f64>>,
    /// Bytes held by the score statistics (genuine scores, histogram, top).
    pub bytes: f64,
}

fn rows(what: &str, data: &[f32], labels: &[i32], dim: u32) -> Result<Vec<i64>> {
    if dim == 0 || data.len() != labels.len() * dim as usize {
        return Err(Error::new(
            Status::InvalidArg,
            format!("{what}: {} values for {} labels of dimension {dim}", data.len(), labels.len()),
        ));
    }
    Ok(labels.iter().map(|&l| l as i64).collect())
}

fn keep(o: &OneToOneOptions) -> Keep {
    Keep { bins: o.bins.max(1) as usize, top: o.top as usize }
}

fn result(s: Scores, o: &OneToOneOptions) -> OneToOneResult {
    let point = |l: Level| OperatingPoint {
        fmr: l.fmr,
        tar: l.tar,
        fnmr: l.fnmr,
        threshold: l.threshold,
        impostors: l.impostors as f64,
        false_matches_allowed: l.false_matches_allowed as f64,
        exact: l.exact,
    };
    OneToOneResult {
        genuine: s.genuine.len() as f64,
        impostors: s.impostors.count as f64,
        levels: o.fmrs.iter().map(|&f| point(level(&s.genuine, &s.impostors, f))).collect(),
        curve: curve(&s.genuine, &s.impostors, o.curve_from, o.per_decade as usize)
            .into_iter()
            .map(|(f, t)| vec![f, t])
            .collect(),
        bytes: (4 * s.genuine.len() + s.impostors.bytes()) as f64,
    }
}

/// Every unordered pair of distinct rows of L2-normalised `embeddings` `[n, dim]`.
#[napi(catch_unwind)]
pub fn verify_all_vs_all(
    embeddings: Float32Array,
    labels: Int32Array,
    dim: u32,
    o: OneToOneOptions,
) -> Result<OneToOneResult> {
    let l = rows("verifyAllVsAll", &embeddings, &labels, dim)?;
    Ok(result(score_all_vs_all(Set { emb: &embeddings, labels: &l }, dim as usize, keep(&o)), &o))
}

/// Every (probe, gallery) pair; with `paired`, probe i is a masked copy of gallery image i
/// and that pair is left out.
#[napi(catch_unwind)]
pub fn verify_cross(
    probe: Float32Array,
    gallery: Float32Array,
    labels: Int32Array,
    dim: u32,
    paired: bool,
    o: OneToOneOptions,
) -> Result<OneToOneResult> {
    let l = rows("verifyCross", &probe, &labels, dim)?;
    rows("verifyCross gallery", &gallery, &labels, dim)?;
    let (p, g) = (Set { emb: &probe, labels: &l }, Set { emb: &gallery, labels: &l });
    Ok(result(score_cross(p, g, dim as usize, paired, keep(&o)), &o))
}

/// Operating points from genuine and impostor scores given directly.
#[napi(catch_unwind)]
pub fn verify_scores(genuine: Float32Array, impostors: Float32Array, o: OneToOneOptions) -> Result<OneToOneResult> {
    let mut g = genuine.to_vec();
    if g.iter().chain(impostors.iter()).any(|v| !v.is_finite()) {
        return Err(Error::new(Status::InvalidArg, "verifyScores: scores must be finite numbers"));
    }
    g.sort_by(f32::total_cmp);
    let k = keep(&o);
    let mut imp = maskfr_eval::Impostors::new(k.bins, k.top);
    impostors.iter().for_each(|&s| imp.add(s));
    Ok(result(Scores { genuine: g, impostors: imp }, &o))
}
