//! Face alignment from five landmarks, as insightface's `norm_crop` does it
//! (`python-package/insightface/utils/face_align.py`): the similarity transform fitted by
//! Umeyama's method (skimage's `SimilarityTransform.estimate`) from the landmarks to ArcFace's
//! template, then OpenCV's `warpAffine` (bilinear, constant zero border) reproduced to the
//! bit, in either of the two ways OpenCV has computed it ([`Warp`]): 4.x's fixed-point 8-bit
//! path (1/32-pixel positions, 15-bit integer weights; every published insightface figure
//! was computed on those pixels) or 5.x's float kernels (what `pip install insightface`
//! brings today), which differ from it by up to 5 levels on ~9% of the values.

use crate::image_codec::Rgb;
use crate::{err, Result};

mod warp_float;
pub use warp_float::warp_affine_float;

pub type Point = [f64; 2];

/// Which OpenCV `warpAffine` (8-bit, bilinear, zero border) the crop reproduces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Warp {
    /// OpenCV 4.x (bit for bit: measured on 4.10, 4.11, 4.12 and 4.14): fixed point, positions
    /// rounded to 1/32 pixel and 15-bit integer weights. The crops insightface's published
    /// models and figures were made with.
    Fixed,
    /// OpenCV 5.x (measured on 5.1: all but 0.0004% of values, those off by one): float32
    /// positions and weights. What `pip install insightface` installs today (it depends on
    /// opencv-python, now 5.1), so the default.
    #[default]
    Float,
}

impl Warp {
    /// `fixed` or `float`, the default when not given; anything else is refused, `what`
    /// naming where it came from.
    pub fn parse(s: Option<&str>, what: &str) -> Result<Warp> {
        match s {
            None => Ok(Warp::default()),
            Some("fixed") => Ok(Warp::Fixed),
            Some("float") => Ok(Warp::Float),
            Some(s) => err(format!("{what}: the warp is 'fixed' (OpenCV 4.x) or 'float' (OpenCV 5.x), got '{s}'")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Warp::Fixed => "fixed",
            Warp::Float => "float",
        }
    }
}

/// ArcFace's 112×112 template (`arcface_dst`): left eye, right eye, nose tip, left and right
/// mouth corners, in the image's left-to-right order.
pub const ARCFACE_DST: [Point; 5] =
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];

/// The template for a `size`×`size` crop, as `estimate_norm` scales it: ×size/112 for
/// multiples of 112, else ×size/128 shifted right by 8·ratio for multiples of 128. insightface
/// holds `arcface_dst` in float32 and scales it in float32: so do we.
pub fn template(size: usize) -> Result<[[f32; 2]; 5]> {
    if size > crate::image_codec::MAX_SIDE {
        // Checked before a crop of size² pixels is allocated.
        return err(format!(
            "align: crop size {size} is over {} (a face crop, not a poster)",
            crate::image_codec::MAX_SIDE
        ));
    }
    let (ratio, dx) = if size > 0 && size.is_multiple_of(112) {
        (size as f64 / 112.0, 0.0)
    } else if size > 0 && size.is_multiple_of(128) {
        let r = size as f64 / 128.0;
        (r, 8.0 * r)
    } else {
        return err(format!("align: crop size {size} is not a multiple of 112 or 128 (insightface's templates)"));
    };
    let (ratio, dx) = (ratio as f32, dx as f32);
    Ok(ARCFACE_DST.map(|[x, y]| [x as f32 * ratio + dx, y as f32 * ratio]))
}

/// `estimate_norm`'s similarity (image → `size`×`size` crop) for five landmarks.
pub fn norm_transform(landmarks: &[Point; 5], size: usize) -> Result<[f64; 6]> {
    Ok(similarity_to_f32(landmarks, &template(size)?))
}

/// skimage's `SimilarityTransform.estimate(src, dst)` for a float32 `dst` (insightface's
/// templates, and `eval_ijbc.py`'s, are float32): skimage centres it in float32 (its mean and
/// the differences), mirrored here, as that rounding moves the transform by ~1e-6, enough to
/// move a pixel's 1/32 position.
pub fn similarity_to_f32(src: &[Point; 5], dst: &[[f32; 2]; 5]) -> [f64; 6] {
    let mean = [0, 1].map(|k| dst.iter().fold(0f32, |s, p| s + p[k]) / 5.0);
    let centred = dst.map(|p| [(p[0] - mean[0]) as f64, (p[1] - mean[1]) as f64]);
    umeyama(src, [mean[0] as f64, mean[1] as f64], &centred)
}

/// The least-squares similarity `[a b c; d e f]` taking `src` to `dst` (Umeyama 1991, no
/// reflection).
pub fn similarity(src: &[Point; 5], dst: &[Point; 5]) -> [f64; 6] {
    let mean = [0, 1].map(|k| dst.iter().fold(0.0, |s, p| s + p[k]) / 5.0);
    umeyama(src, mean, &dst.map(|p| [p[0] - mean[0], p[1] - mean[1]]))
}

/// skimage's `_umeyama` in the closed form of the 2-D case, in its order of operations: the
/// SVD's rotation is the angle of the cross-covariance's symmetric and antisymmetric parts,
/// and its S·d their length.
fn umeyama(src: &[Point; 5], dst_mean: Point, dst_centred: &[Point; 5]) -> [f64; 6] {
    let n = src.len() as f64;
    let mean = [0, 1].map(|k| src.iter().fold(0.0, |s, p| s + p[k]) / n);
    let centred = src.map(|p| [p[0] - mean[0], p[1] - mean[1]]);
    // A = dst_demeanᵀ · src_demean / n.
    let mut a = [[0.0; 2]; 2];
    for i in 0..2 {
        for j in 0..2 {
            a[i][j] = dst_centred.iter().zip(&centred).fold(0.0, |s, (d, c)| s + d[i] * c[j]) / n;
        }
    }
    // src_demean.var(axis=0).sum(): numpy re-centres before squaring.
    let var: f64 = (0..2)
        .map(|k| {
            let m = centred.iter().fold(0.0, |s, p| s + p[k]) / n;
            centred.iter().fold(0.0, |s, p| s + (p[k] - m) * (p[k] - m)) / n
        })
        .sum();
    let (p, q) = (a[0][0] + a[1][1], a[1][0] - a[0][1]);
    let h = p.hypot(q);
    let (c, s) = (p / h, q / h);
    let scale = 1.0 / var * h;
    let tx = dst_mean[0] - scale * (c * mean[0] - s * mean[1]);
    let ty = dst_mean[1] - scale * (s * mean[0] + c * mean[1]);
    [c * scale, -s * scale, tx, s * scale, c * scale, ty]
}

/// Refuses landmarks insightface would turn into a meaningless crop: a coordinate that is not
/// a finite number, or points so close together or so arranged that the fitted similarity
/// is degenerate. `what` names the image (and the landmarks' file and line) in the error.
pub fn check_landmarks(pts: &[Point; 5], what: &str) -> Result<()> {
    const NAMES: [&str; 5] = ["left eye", "right eye", "nose", "left mouth corner", "right mouth corner"];
    for (p, name) in pts.iter().zip(NAMES) {
        if !p.iter().all(|v| v.is_finite()) {
            return err(format!("{what}: the {name} is at ({}, {}): not finite", p[0], p[1]));
        }
    }
    let span = pts.iter().flat_map(|a| pts.iter().map(move |b| (a[0] - b[0]).hypot(a[1] - b[1]))).fold(0.0, f64::max);
    if span < 1.0 {
        return err(format!("{what}: the five landmarks lie within {span:.3} pixel of each other: not a face"));
    }
    let m = similarity(pts, &ARCFACE_DST);
    let scale = m[0].hypot(m[3]);
    if !(scale.is_finite() && scale > 1e-6) {
        return err(format!("{what}: no rotation of the face template fits these five landmarks (degenerate)"));
    }
    Ok(())
}

/// The `size`×`size` ArcFace crop of `img` for these landmarks: `norm_crop` to the bit of the
/// OpenCV `warp` names.
pub fn norm_crop(img: &Rgb, landmarks: &[Point; 5], size: usize, warp: Warp, what: &str) -> Result<Rgb> {
    check_landmarks(landmarks, what)?;
    Ok(warp_affine_with(warp, img, &norm_transform(landmarks, size)?, size, size))
}

/// `warpAffine` on 8-bit RGB as the OpenCV `warp` names computes it.
pub fn warp_affine_with(warp: Warp, img: &Rgb, m: &[f64; 6], width: usize, height: usize) -> Rgb {
    match warp {
        Warp::Fixed => warp_affine(img, m, width, height),
        Warp::Float => warp_affine_float(img, m, width, height),
    }
}

/// OpenCV 4.x's `warpAffine(img, m, (width, height), INTER_LINEAR, BORDER_CONSTANT, 0)` on
/// 8-bit RGB ([`Warp::Fixed`]): `m` maps source to destination and is inverted as OpenCV inverts it; each destination
/// pixel's source position is computed in fixed point (1/1024, rounded to 1/32), and its four
/// neighbours are weighted by 15-bit integers, a neighbour outside the image counting as 0.
pub fn warp_affine(img: &Rgb, m: &[f64; 6], width: usize, height: usize) -> Rgb {
    const AB_SCALE: f64 = 1024.0; // AB_BITS = 10
    const ROUND: i64 = 16; // AB_SCALE / INTER_TAB_SIZE / 2
    let inv = invert(m);
    // cvRound: to nearest, ties to even; saturate_cast<int> clamps.
    let fix = |v: f64| (v * AB_SCALE).round_ties_even().clamp(i32::MIN as f64, i32::MAX as f64) as i64;
    let adelta: Vec<i64> = (0..width).map(|x| fix(inv[0] * x as f64)).collect();
    let bdelta: Vec<i64> = (0..width).map(|x| fix(inv[3] * x as f64)).collect();
    let (w, h) = (img.width as i64, img.height as i64);
    let (src, stride) = (&img.data, img.width * 3);
    let mut out = vec![0u8; width * height * 3];
    for (y, row) in out.chunks_exact_mut(width * 3).enumerate() {
        let x0 = fix(inv[1] * y as f64 + inv[2]) + ROUND;
        let y0 = fix(inv[4] * y as f64 + inv[5]) + ROUND;
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            let (fx_all, fy_all) = ((x0 + adelta[x]) >> 5, (y0 + bdelta[x]) >> 5);
            // Source cell (saturated to a short, as OpenCV stores it) and its 1/32 fraction.
            let sx = (fx_all >> 5).clamp(i16::MIN as i64, i16::MAX as i64);
            let sy = (fy_all >> 5).clamp(i16::MIN as i64, i16::MAX as i64);
            let (ax, ay) = ((fx_all & 31) as i32, (fy_all & 31) as i32);
            // OpenCV's table holds 32767 (and 1 on the far tap) where this is 32768: the
            // rounded result is the same for 8-bit values.
            let wts = [(32 - ay) * (32 - ax) * 32, (32 - ay) * ax * 32, ay * (32 - ax) * 32, ay * ax * 32];
            let blend =
                |v: [i32; 4]| ((v[0] * wts[0] + v[1] * wts[1] + v[2] * wts[2] + v[3] * wts[3] + (1 << 14)) >> 15) as u8;
            if sx >= 0 && sy >= 0 && sx + 1 < w && sy + 1 < h {
                let o = (sy * w + sx) as usize * 3;
                let o = [o, o + 3, o + stride, o + stride + 3];
                for (c, v) in px.iter_mut().enumerate() {
                    *v = blend(o.map(|k| src[k + c] as i32));
                }
            } else if sx + 1 >= 0 && sy + 1 >= 0 && sx < w && sy < h {
                let taps = [(sx, sy), (sx + 1, sy), (sx, sy + 1), (sx + 1, sy + 1)];
                let at =
                    taps.map(|(tx, ty)| (tx >= 0 && ty >= 0 && tx < w && ty < h).then(|| (ty * w + tx) as usize * 3));
                for (c, v) in px.iter_mut().enumerate() {
                    *v = blend(at.map(|o| o.map_or(0, |o| src[o + c] as i32)));
                }
            }
        }
    }
    Rgb { width, height, data: out }
}

/// The inverse affine map, in OpenCV's operation order (so its rounding is OpenCV's too).
fn invert(m: &[f64; 6]) -> [f64; 6] {
    let d = m[0] * m[4] - m[1] * m[3];
    let d = if d != 0.0 { 1.0 / d } else { 0.0 };
    let (a11, a22, a12, a21) = (m[4] * d, m[0] * d, -m[1] * d, -m[3] * d);
    let b1 = -a11 * m[2] - a12 * m[5];
    let b2 = -a21 * m[2] - a22 * m[5];
    [a11, a12, b1, a21, a22, b2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_recovers_a_known_transform() {
        let (s, t, tx, ty) = (1.7, 0.4f64, -12.5, 30.25);
        let m = [s * t.cos(), -s * t.sin(), tx, s * t.sin(), s * t.cos(), ty];
        let dst = ARCFACE_DST.map(|[x, y]| [m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]]);
        let fit = similarity(&ARCFACE_DST, &dst);
        for (a, b) in fit.iter().zip(&m) {
            assert!((a - b).abs() < 1e-12, "{fit:?} vs {m:?}");
        }
    }

    #[test]
    fn identity_warp_copies_and_outside_is_zero() {
        let img = Rgb { width: 4, height: 3, data: (0..36).map(|v| v as u8 * 7).collect() };
        for warp in [Warp::Fixed, Warp::Float] {
            let same = warp_affine_with(warp, &img, &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0], 4, 3);
            assert_eq!(same, img, "{warp:?}");
            let gone = warp_affine_with(warp, &img, &[1.0, 0.0, 100.0, 0.0, 1.0, 0.0], 4, 3);
            assert!(gone.data.iter().all(|&v| v == 0), "{warp:?}");
        }
    }

    #[test]
    fn half_pixel_ties_round_up_in_fixed_and_to_even_in_float() {
        // Sampled half-way between neighbours: (v + v+1)/2 ends in .5 for every pixel.
        let img = Rgb { width: 4, height: 2, data: (0..24).map(|v| v as u8 * 3).collect() };
        let shift = [1.0, 0.0, -0.5, 0.0, 1.0, 0.0];
        let (fixed, float) = (warp_affine(&img, &shift, 3, 2), warp_affine_float(&img, &shift, 3, 2));
        for (i, (&a, &b)) in fixed.data.iter().zip(&float.data).enumerate() {
            let (p, q) = (img.data[i / 9 * 12 + i % 9] as f64, img.data[i / 9 * 12 + i % 9 + 3] as f64);
            let mid = (p + q) / 2.0;
            assert_eq!(a as f64, mid.ceil(), "fixed, value {i}");
            assert_eq!(b as f64, mid.round_ties_even(), "float, value {i}");
        }
        assert_ne!(fixed, float);
    }

    #[test]
    fn warp_names_parse_and_others_are_refused() {
        assert_eq!(Warp::parse(Some("fixed"), "x").unwrap(), Warp::Fixed);
        assert_eq!(Warp::parse(Some(Warp::Float.name()), "x").unwrap(), Warp::Float);
        assert_eq!(Warp::parse(None, "x").unwrap(), Warp::default());
        assert!(Warp::parse(Some("cubic"), "--warp").unwrap_err().0.contains("--warp: the warp is 'fixed'"));
    }

    #[test]
    fn bad_landmarks_are_named() {
        let mut p = ARCFACE_DST;
        p[2][1] = f64::NAN;
        assert!(check_landmarks(&p, "x.jpg").unwrap_err().0.contains("the nose is at"));
        let tiny = [[10.0, 10.0]; 5];
        assert!(check_landmarks(&tiny, "x.jpg").unwrap_err().0.contains("within 0.000 pixel"));
        assert!(template(100).is_err());
        assert_eq!(template(128).unwrap()[0], [38.2946f32 + 8.0, 51.6963f32]);
    }
}
