//! The template synthesizer: mask shapes drawn in a 100×80 template space around six key
//! points, a fabric (pattern and two colours) per sample, warped onto the face by the
//! homography that takes the template's key points to the face's, with feathered edges and
//! brightness matched to the lower face. Many shapes and textures, less natural.

use crate::geometry::{face_keypoints, Homography, Point};
use crate::texture::{Fabric, PATTERNS};
use maskfr_core::random::Stream;
use maskfr_io::image_codec::Rgb;

/// Template key points, in the order of [`crate::geometry::face_keypoints`].
pub const TEMPLATE_KEYPOINTS: [Point; 6] =
    [[4.0, 26.0], [96.0, 26.0], [50.0, 6.0], [9.0, 56.0], [91.0, 56.0], [50.0, 80.0]];
const EDGE: f64 = 1.6; // feathering width, template units

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskShape {
    Surgical,
    N95,
    Kn95,
    Cloth,
    Gas,
}

pub const SHAPES: [MaskShape; 5] =
    [MaskShape::Surgical, MaskShape::N95, MaskShape::Kn95, MaskShape::Cloth, MaskShape::Gas];

/// Signed distance inside a convex polygon (positive inside), vertices clockwise on screen.
fn polygon_inside(p: Point, poly: &[Point]) -> f64 {
    (0..poly.len())
        .map(|i| {
            let (a, b) = (poly[i], poly[(i + 1) % poly.len()]);
            let (ex, ey) = (b[0] - a[0], b[1] - a[1]);
            ((p[1] - a[1]) * ex - (p[0] - a[0]) * ey) / ex.hypot(ey)
        })
        .fold(f64::INFINITY, f64::min)
}

const KN95: [Point; 6] = [[50.0, 3.0], [97.0, 28.0], [88.0, 62.0], [50.0, 80.0], [12.0, 62.0], [3.0, 28.0]];

impl MaskShape {
    /// (coverage in [0, 1], shading factor) at template point (u, v).
    pub fn sample(self, u: f64, v: f64) -> (f64, f64) {
        let soft = |d: f64| (d / EDGE).clamp(0.0, 1.0);
        let bump = |x: f64, at: f64, w: f64| (-((x - at) / w).powi(2)).exp();
        match self {
            MaskShape::Surgical => {
                let top = 7.0 + 0.0035 * (u - 50.0).powi(2);
                let bottom = 78.0 - 0.004 * (u - 50.0).powi(2);
                let d = (v - top).min(bottom - v).min(u - 2.0).min(98.0 - u);
                let pleats = [30.0, 42.0, 54.0]
                    .iter()
                    .map(|&p| 0.16 * bump(v, p, 1.4) - 0.06 * bump(v, p - 2.5, 1.5))
                    .sum::<f64>();
                (soft(d), 1.0 - pleats)
            }
            MaskShape::N95 => {
                let r = ((u - 50.0) / 47.0).hypot((v - 45.0) / 37.0);
                (soft((1.0 - r) * 37.0), 0.82 + 0.18 * (1.0 - r * r) - 0.12 * bump(v, 40.0, 1.2))
            }
            MaskShape::Kn95 => {
                let side = if u < 50.0 { 0.93 } else { 1.0 };
                (soft(polygon_inside([u, v], &KN95)), side - 0.25 * bump(u, 50.0, 0.7))
            }
            MaskShape::Cloth => {
                let r = (((u - 50.0) / 48.0).abs().powf(3.5) + ((v - 44.0) / 38.0).abs().powf(3.5)).powf(1.0 / 3.5);
                let d = (1.0 - r) * 38.0;
                (soft(d), 0.95 - 0.2 * bump(d, 3.0, 0.4) - 0.15 * bump(u, 50.0, 0.6))
            }
            MaskShape::Gas => {
                let body = (1.0 - ((u - 50.0) / 30.0).hypot((v - 50.0) / 32.0)) * 30.0;
                let cart = |cx: f64| 15.0 - (u - cx).hypot(v - 56.0);
                let (l, r) = (cart(15.0), cart(85.0));
                let c = l.max(r);
                if c > body {
                    (soft(c), 0.45 + 0.25 * bump(c, 4.0, 1.0) - 0.15 * bump(c, 1.0, 0.6))
                } else {
                    (soft(body), 0.8 + 0.2 * (body / 30.0) - 0.15 * bump(v, 62.0, 1.5))
                }
            }
        }
    }
}

/// One sample's mask: shape, fabric and its two colours (RGB in [0, 1]).
#[derive(Clone, Copy, Debug)]
pub struct Choice {
    pub shape: MaskShape,
    pub fabric: Fabric,
    pub colors: [[f64; 3]; 2],
}

const PALETTE: [[f64; 3]; 12] = [
    [0.95, 0.95, 0.95],
    [0.55, 0.75, 0.92],
    [0.08, 0.08, 0.09],
    [0.55, 0.56, 0.58],
    [0.12, 0.16, 0.35],
    [0.93, 0.6, 0.7],
    [0.35, 0.6, 0.4],
    [0.75, 0.15, 0.15],
    [0.85, 0.78, 0.62],
    [0.45, 0.25, 0.6],
    [0.95, 0.85, 0.3],
    [0.3, 0.75, 0.75],
];

pub fn choose(seed: u64) -> Choice {
    let mut r = Stream::new(seed);
    let shape = r.pick(&SHAPES);
    let pattern = if r.uniform() < 0.35 { PATTERNS[0] } else { r.pick(&PATTERNS) };
    let fabric = Fabric {
        pattern,
        period: 4.0 + 10.0 * r.uniform(),
        angle: r.uniform() * std::f64::consts::PI,
        seed: seed.rotate_left(17),
    };
    let tint = |c: [f64; 3], r: &mut Stream| c.map(|x| (x * (0.85 + 0.3 * r.uniform())).min(1.0));
    let colors = [tint(r.pick(&PALETTE), &mut r), tint(r.pick(&PALETTE), &mut r)];
    Choice { shape, fabric, colors }
}

/// Mean luminance (0–1) of the pixels inside the key points' bounding box.
fn lower_face_luminance(img: &Rgb, kp: &[Point; 6]) -> f64 {
    let (x0, x1) = bounds(kp.iter().map(|p| p[0]), img.width);
    let (y0, y1) = bounds(kp.iter().map(|p| p[1]), img.height);
    let (mut sum, mut n) = (0.0, 0usize);
    for y in y0..y1 {
        for x in x0..x1 {
            let p = &img.data[(y * img.width + x) * 3..][..3];
            sum += (0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64) / 255.0;
            n += 1;
        }
    }
    if n == 0 {
        0.5
    } else {
        sum / n as f64
    }
}

fn bounds(xs: impl Iterator<Item = f64>, limit: usize) -> (usize, usize) {
    let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    (lo.floor().clamp(0.0, limit as f64) as usize, (hi.ceil() + 1.0).clamp(0.0, limit as f64) as usize)
}

/// Draws the mask `c` onto `img` (a face with these five landmarks).
pub fn draw(img: &mut Rgb, landmarks: &[Point; 5], c: &Choice) {
    let kp = face_keypoints(landmarks);
    let h = Homography::fit(&TEMPLATE_KEYPOINTS, &kp);
    let inv = h.inverse();
    let light = (lower_face_luminance(img, &kp) / 0.5).clamp(0.45, 1.25).powf(0.6);
    let corners = [[0.0, 0.0], [100.0, 0.0], [0.0, 80.0], [100.0, 80.0]].map(|p| h.apply(p));
    let (x0, x1) = bounds(corners.iter().map(|p| p[0]), img.width);
    let (y0, y1) = bounds(corners.iter().map(|p| p[1]), img.height);
    for y in y0..y1 {
        for x in x0..x1 {
            let [u, v] = inv.apply([x as f64 + 0.5, y as f64 + 0.5]);
            if !(-2.0..=102.0).contains(&u) || !(-2.0..=82.0).contains(&v) {
                continue;
            }
            let (alpha, shade) = c.shape.sample(u, v);
            if alpha <= 0.0 {
                continue;
            }
            let t = c.fabric.value(u, v);
            let px = &mut img.data[(y * img.width + x) * 3..][..3];
            for (k, p) in px.iter_mut().enumerate() {
                let col = (c.colors[0][k] * (1.0 - t) + c.colors[1][k] * t) * shade * light;
                *p = (*p as f64 * (1.0 - alpha) + 255.0 * col.clamp(0.0, 1.0) * alpha).round() as u8;
            }
        }
    }
}

impl MaskShape {
    pub fn name(self) -> &'static str {
        match self {
            MaskShape::Surgical => "surgical",
            MaskShape::N95 => "n95",
            MaskShape::Kn95 => "kn95",
            MaskShape::Cloth => "cloth",
            MaskShape::Gas => "gas",
        }
    }
}

/// The template synthesizer: a random mask per seed, drawn from these choices (MaskTheFace's
/// CLI choices: kinds, colours, patterns, user textures). The default draws from everything.
#[derive(Clone, Debug, Default)]
pub struct TemplateSynth {
    /// Shapes drawn from (None: all of [`SHAPES`]).
    pub shapes: Option<Vec<MaskShape>>,
    /// Colours drawn from (None: the built-in palette).
    pub colors: Option<Vec<[f64; 3]>>,
    /// Fabric patterns drawn from (None: all of [`PATTERNS`]).
    pub patterns: Option<Vec<crate::texture::Pattern>>,
    /// User textures (`--textures DIR`); when given, every mask prints one of them.
    pub textures: Vec<std::sync::Arc<crate::choices::Texture>>,
}

impl TemplateSynth {
    /// Draws the mask chosen by `seed`; returns what it drew.
    pub fn apply(&self, img: &mut Rgb, landmarks: &[Point; 5], seed: u64) -> crate::choices::MaskInfo {
        let c = choose(seed);
        draw(img, landmarks, &c);
        crate::choices::MaskInfo {
            synthesizer: crate::choices::Synthesizer::Template,
            kind: c.shape.name(),
            color: c.colors[0].map(|x| (x * 255.0).round().clamp(0.0, 255.0) as u8),
            pattern: format!("{:?}", c.fabric.pattern).to_lowercase(),
        }
    }
}
