//! 1:1 verification bindings (maskfr-eval): all-vs-all and probe-vs-gallery scoring of
//! embeddings into operating points and a ROC curve; IJB-B/C loose crops aligned as
//! `eval_ijbc.py` aligns them, its template-pair verification and `ijb_1n.py`'s identification.

use crate::js;
use maskfr_eval::{count_cross_groups, curve, level, score_all_vs_all, score_cross, Keep, Level, Scores, Set};
use maskfr_io::image_codec::Rgb;
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

/// The probes' and the gallery's labels: `gallery_labels` when the gallery is a set of its
/// own (pre-masked probes against a set's unmasked images), else the probes' for both.
fn cross_labels(
    probe: &[f32],
    gallery: &[f32],
    labels: &[i32],
    gallery_labels: Option<&[i32]>,
    dim: u32,
) -> Result<(Vec<i64>, Vec<i64>)> {
    Ok((
        rows("verifyCross", probe, labels, dim)?,
        rows("verifyCross gallery", gallery, gallery_labels.unwrap_or(labels), dim)?,
    ))
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
    gallery_labels: Option<Int32Array>,
) -> Result<OneToOneResult> {
    let (lp, lg) = cross_labels(&probe, &gallery, &labels, gallery_labels.as_deref(), dim)?;
    let (p, g) = (Set { emb: &probe, labels: &lp }, Set { emb: &gallery, labels: &lg });
    Ok(result(score_cross(p, g, dim as usize, paired, keep(&o)), &o))
}

/// One probe group's pairs of [`verify_cross`] and how many of them score at or above each
/// threshold.
#[napi(object)]
pub struct GroupCount {
    pub genuine: f64,
    pub impostors: f64,
    pub genuine_accepted: Vec<f64>,
    pub impostors_accepted: Vec<f64>,
}

/// [`verify_cross`]'s pairs counted by their probe's group (`groups[i]` below `nGroups`;
/// any other value leaves probe i out) at each of `thresholds`, exactly.
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn cross_group_counts(
    probe: Float32Array,
    gallery: Float32Array,
    labels: Int32Array,
    dim: u32,
    paired: bool,
    groups: Uint32Array,
    n_groups: u32,
    thresholds: Vec<f64>,
    gallery_labels: Option<Int32Array>,
) -> Result<Vec<GroupCount>> {
    let (lp, lg) = cross_labels(&probe, &gallery, &labels, gallery_labels.as_deref(), dim)?;
    if groups.len() != lp.len() || thresholds.iter().any(|t| t.is_nan()) {
        let msg =
            format!("crossGroupCounts: {} groups for {} probes, thresholds {thresholds:?}", groups.len(), lp.len());
        return Err(Error::new(Status::InvalidArg, msg));
    }
    let (p, g) = (Set { emb: &probe, labels: &lp }, Set { emb: &gallery, labels: &lg });
    let counts = count_cross_groups(p, g, dim as usize, paired, &groups, n_groups as usize, &thresholds);
    let f = |v: Vec<u64>| v.into_iter().map(|x| x as f64).collect();
    Ok(counts
        .into_iter()
        .map(|c| GroupCount {
            genuine: c.genuine as f64,
            impostors: c.impostors as f64,
            genuine_accepted: f(c.genuine_accepted),
            impostors_accepted: f(c.impostors_accepted),
        })
        .collect())
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

/// An IJB pair list (`meta/<set>_template_pair_label.txt`): template ids and same-subject flags.
#[napi(object)]
pub struct IjbPairs {
    pub first: Int32Array,
    pub second: Int32Array,
    pub same: Uint8Array,
}

#[napi(catch_unwind)]
pub fn ijb_read_pairs(file: String) -> Result<IjbPairs> {
    let text = std::fs::read(&file).map_err(|e| Error::new(Status::InvalidArg, format!("{file}: {e}")))?;
    let p = maskfr_eval::parse_pairs(&text, &file).map_err(|e| Error::new(Status::InvalidArg, e))?;
    let ids = |v: Vec<i64>| -> Result<Int32Array> {
        let v: std::result::Result<Vec<i32>, _> = v.into_iter().map(i32::try_from).collect();
        Ok(Int32Array::new(v.map_err(|_| Error::new(Status::InvalidArg, format!("{file}: a template id beyond 2³¹")))?))
    };
    Ok(IjbPairs {
        first: ids(p.first)?,
        second: ids(p.second)?,
        same: Uint8Array::new(p.same.into_iter().map(u8::from).collect()),
    })
}

#[napi(object)]
pub struct IjbRead {
    pub far: f64,
    pub tar: f64,
    pub at: f64,
    pub threshold: f64,
}

#[napi(object)]
pub struct IjbVerification {
    pub reads: Vec<IjbRead>,
    /// `[far, tar]` at each of `curve_fars`, read as the table is.
    pub curve: Vec<Vec<f64>>,
    /// Every pair's score, in the list's order.
    pub scores: Float64Array,
}

/// Template features `[t, dim]` (pooled, not yet normalised) L2-normalised, pairs of rows
/// scored by cosine, TAR read at each of `fars` (and `curve_fars`, for plots) as
/// `eval_ijbc.py` reads it.
#[napi(catch_unwind)]
pub fn ijb_verify(
    templates: Float64Array,
    dim: u32,
    first: Uint32Array,
    second: Uint32Array,
    same: Uint8Array,
    fars: Vec<f64>,
    curve_fars: Vec<f64>,
) -> Result<IjbVerification> {
    let (d, t) = (dim as usize, templates.len() / (dim.max(1) as usize));
    let fine = d > 0 && templates.len() == t * d && first.len() == same.len() && second.len() == same.len();
    if !fine || first.iter().chain(second.iter()).any(|&r| r as usize >= t) {
        let msg = format!(
            "ijbVerify: {} values of dimension {dim}, {}/{}/{} pair rows and labels, rows below {t}",
            templates.len(),
            first.len(),
            second.len(),
            same.len()
        );
        return Err(Error::new(Status::InvalidArg, msg));
    }
    let mut feats = templates.to_vec();
    maskfr_eval::normalize_rows(&mut feats, d);
    let scores = maskfr_eval::score_pairs(&feats, d, &first, &second);
    let labels: Vec<bool> = same.iter().map(|&l| l != 0).collect();
    let (reads, roc) = maskfr_eval::tar_at_far(&scores, &labels, &fars);
    let curve = curve_fars.iter().map(|&f| vec![f, roc.tpr[maskfr_eval::nearest(&roc, f)]]).collect();
    let reads =
        reads.into_iter().map(|r| IjbRead { far: r.far, tar: r.tar, at: r.at, threshold: r.threshold }).collect();
    Ok(IjbVerification { reads, curve, scores: Float64Array::new(scores) })
}

/// IJB loose crops (encoded JPEG/PNG) aligned to 112×112 by their five landmarks
/// (`x1, y1, …, x5, y5` per image) as `eval_ijbc.py` aligns them, decoded in parallel into one
/// `[2n, 3, 112, 112]` tensor normalised as the loader does: the n faces, then their n
/// mirrors (one forward gives the image and flipped embeddings). `what` names the images;
/// `warp` is whose warpAffine the crops reproduce ('float' OpenCV 5.x, the default; 'fixed' 4.x).
#[napi(catch_unwind)]
pub fn ijb_faces(
    images: Vec<Buffer>,
    landmarks: Float64Array,
    what: Vec<String>,
    warp: Option<String>,
) -> Result<crate::tensor::NativeTensor> {
    use maskfr_io::image_codec::{decode, Dims};
    use rayon::prelude::*;
    let (n, per) = (images.len(), 3 * 112 * 112);
    if landmarks.len() != 10 * n || what.len() != n {
        let msg = format!(
            "ijbFaces: {} landmark values and {} names for {n} images (10 values each)",
            landmarks.len(),
            what.len()
        );
        return Err(Error::new(Status::InvalidArg, msg));
    }
    let warp = js(maskfr_io::align::Warp::parse(warp.as_deref(), "ijbFaces: warp"))?;
    let mut out = vec![0f32; 2 * n * per];
    let (faces, mirrors) = out.split_at_mut(n * per);
    faces.par_chunks_mut(per).zip(mirrors.par_chunks_mut(per)).enumerate().try_for_each(
        |(i, (face, mirror))| -> Result<()> {
            let img = js(decode(&images[i], &what[i], Dims::AtMost(4096)))?;
            let crop = js(eval_ijbc_crop(&img, &landmarks[10 * i..10 * i + 10], warp, &what[i]))?;
            maskfr_io::loader::normalize(&crop, false, face);
            maskfr_io::loader::normalize(&crop, true, mirror);
            Ok(())
        },
    )?;
    let t = js(maskfr_core::Tensor::from_vec(out, &[2 * n, 3, 112, 112]))?;
    Ok(crate::tensor::NativeTensor::wrap(t))
}

/// `eval_ijbc.py`'s own template: arcface_dst with x less 8, held in float32, 8 added back in
/// float32 (not bit-identical to norm_crop's template).
const EVAL_IJBC_SRC: [[f32; 2]; 5] =
    [[30.2946, 51.6963], [65.5318, 51.5014], [48.0252, 71.7366], [33.5493, 92.3655], [62.7299, 92.2041]];

/// `eval_ijbc.py`'s crop: float32 landmarks fitted to its template, OpenCV's `warpAffine`
/// (5.x's float one or 4.x's fixed-point one).
/// skimage fits its float32 points in float32 throughout (a float32 SVD); this fit is float64
/// but for the template's rounding, under 1e-5 away: a few values in 10⁴ move by one level.
fn eval_ijbc_crop(img: &Rgb, lmk: &[f64], warp: maskfr_io::align::Warp, what: &str) -> maskfr_core::Result<Rgb> {
    use maskfr_io::align::{check_landmarks, similarity_to_f32, warp_affine_with};
    let pts = [0, 1, 2, 3, 4].map(|k| [lmk[2 * k] as f32 as f64, lmk[2 * k + 1] as f32 as f64]);
    check_landmarks(&pts, what)?;
    let m = similarity_to_f32(&pts, &EVAL_IJBC_SRC.map(|[x, y]| [x + 8.0, y]));
    Ok(warp_affine_with(warp, img, &m, 112, 112))
}

#[napi(object)]
pub struct IjbIdentification {
    pub ranks: Uint32Array,
    pub mates: Float64Array,
    pub non_mates: Float64Array,
}

/// Probe and gallery template features (pooled, not yet normalised) L2-normalised; each probe
/// scored against every gallery template, `mate[i]` being probe i's: mate ranks and scores, and
/// the `top` highest non-mate scores over all probes (`ijb_1n.py`'s FPIR thresholds).
#[napi(catch_unwind)]
pub fn ijb_identify(
    probes: Float64Array,
    gallery: Float64Array,
    dim: u32,
    mate: Uint32Array,
    top: u32,
) -> Result<IjbIdentification> {
    let (d, g) = (dim as usize, gallery.len() / (dim.max(1) as usize));
    if d == 0 || probes.len() != mate.len() * d || gallery.len() != g * d || mate.iter().any(|&m| m as usize >= g) {
        let msg = format!(
            "ijbIdentify: {} probe and {} gallery values of dimension {dim}, {} mates below {g}",
            probes.len(),
            gallery.len(),
            mate.len()
        );
        return Err(Error::new(Status::InvalidArg, msg));
    }
    let (mut p, mut gf) = (probes.to_vec(), gallery.to_vec());
    maskfr_eval::normalize_rows(&mut p, d);
    maskfr_eval::normalize_rows(&mut gf, d);
    let r = maskfr_eval::identify(&p, &gf, d, &mate, top as usize);
    Ok(IjbIdentification {
        ranks: Uint32Array::new(r.ranks),
        mates: Float64Array::new(r.mates),
        non_mates: Float64Array::new(r.non_mates),
    })
}
