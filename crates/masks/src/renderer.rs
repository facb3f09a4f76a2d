//! The renderer synthesizer: a commodity mask (plain fabric, a few colours) draped over a
//! parametric mean head surface shipped here, posed from the five landmarks by an affine
//! camera, shaded (Lambert) so the nose ridge and pleats show. Natural, less varied.
//!
//! The face UV: u across the face (0.5 on the midline), v down it (eyes ≈ 0.28, nose tip
//! ≈ 0.45, mouth ≈ 0.58, chin ≈ 0.70). The mask covers u ∈ [0.1, 0.9], v from a top
//! edge drawn from U(0.33, 0.40) down to 0.70, as insightface's mask renderer does.

use crate::geometry::Point;
use maskfr_core::random::Stream;
use maskfr_io::image_codec::Rgb;

/// Canonical head frame: x right, y down, z toward the camera; the eyes 0.76 apart.
fn y_of(v: f64) -> f64 {
    -0.25 + (v - 0.28) * 3.45
}

fn x_of(u: f64) -> f64 {
    (u - 0.5) * 2.1
}

/// The mean head surface: an ellipsoid with a nose ridge, lips and chin.
pub fn head_depth(x: f64, y: f64) -> f64 {
    let e = (1.0 - (x / 1.05).powi(2) - (y / 1.6).powi(2)).max(0.0).sqrt() * 0.9;
    let ridge = if y < -0.1 {
        0.0
    } else if y < 0.3 {
        0.05 + 0.23 * (y + 0.1) / 0.4
    } else {
        (0.28 - 2.0 * (y - 0.3)).max(0.0)
    };
    e + ridge * (-(x / 0.12).powi(2)).exp() + 0.04 * (-((y - 0.78) / 0.08).powi(2)).exp() * (-(x / 0.35).powi(2)).exp()
}

/// The five landmarks on the mean head, ArcFace order.
fn landmarks_3d() -> [[f64; 3]; 5] {
    [[-0.38, -0.25], [0.38, -0.25], [0.0, 0.3], [-0.33, 0.78], [0.33, 0.78]].map(|[x, y]| [x, y, head_depth(x, y)])
}

/// The mask's surface: the head plus a tent from the nose tip down to the chin (a mask
/// does not follow the nostrils and lips) and pleats.
fn mask_depth(x: f64, y: f64, pleats: f64, v: f64) -> f64 {
    let profile = if y < 0.3 { ((y + 0.05) / 0.35).clamp(0.0, 1.0) } else { (1.0 - 0.7 * (y - 0.3) / 0.9).max(0.3) };
    head_depth(x, y)
        + 0.02
        + 0.26 * profile * (-(x / 0.32).powi(2)).exp()
        + pleats * 0.012 * (v * std::f64::consts::TAU / 0.07).sin()
}

/// Least-squares affine camera `[u, v] = P·[X, Y, Z, 1]` from 3D–2D pairs.
fn fit_camera(src: &[[f64; 3]; 5], dst: &[Point; 5]) -> [[f64; 4]; 2] {
    let mut m = [[0.0; 4]; 4];
    let mut b = [[0.0; 4]; 2];
    for (s, d) in src.iter().zip(dst) {
        let r = [s[0], s[1], s[2], 1.0];
        for i in 0..4 {
            for j in 0..4 {
                m[i][j] += r[i] * r[j];
            }
            b[0][i] += r[i] * d[0];
            b[1][i] += r[i] * d[1];
        }
    }
    // A little ridge regularisation: five nearly coplanar points leave depth weakly determined.
    (0..3).for_each(|i| m[i][i] += 1e-3);
    b.map(|rhs| crate::geometry::solve4(m, rhs))
}

/// Commodity colours and their default probabilities (white, light blue, black, green, grey, pink).
pub const COLORS: [([f64; 3], f64); 6] = [
    ([0.94, 0.94, 0.93], 0.35),
    ([0.56, 0.74, 0.9], 0.3),
    ([0.09, 0.09, 0.1], 0.15),
    ([0.45, 0.68, 0.55], 0.08),
    ([0.6, 0.61, 0.63], 0.07),
    ([0.92, 0.7, 0.76], 0.05),
];

#[derive(Clone, Debug)]
pub struct RenderSynth {
    /// Colours with their probabilities (normalised when drawing).
    pub colors: Vec<([f64; 3], f64)>,
    /// Share of half masks (insightface's renderer's half option: the mask below the nose).
    pub half_share: f64,
}

impl Default for RenderSynth {
    fn default() -> Self {
        RenderSynth { colors: COLORS.to_vec(), half_share: 0.0 }
    }
}

impl RenderSynth {
    /// Draws a commodity mask on `img`, a face with these landmarks; chosen by `seed`.
    pub fn apply(&self, img: &mut Rgb, landmarks: &[Point; 5], seed: u64) -> crate::choices::MaskInfo {
        let mut r = Stream::new(seed ^ 0x0DDB_A11C_0FFE_E000);
        let total: f64 = self.colors.iter().map(|c| c.1).sum();
        let mut pick = r.uniform() * total;
        let color = self.colors.iter().find(|c| (pick -= c.1, pick).1 < 0.0).map_or(self.colors[0].0, |c| c.0);
        let top = 0.33 + 0.07 * r.uniform();
        let pleats = if r.uniform() < 0.6 { 1.0 } else { 0.0 };
        let light = [0.6 * (r.uniform() - 0.5), -0.3 - 0.4 * r.uniform(), 1.0];
        let ln = (light[0] * light[0] + light[1] * light[1] + 1.0f64).sqrt();
        let cam = fit_camera(&landmarks_3d(), landmarks);
        let project = |p: [f64; 3]| -> Point {
            let f = |c: &[f64; 4]| c[0] * p[0] + c[1] * p[1] + c[2] * p[2] + c[3];
            [f(&cam[0]), f(&cam[1])]
        };
        // Tessellate the mask region and rasterise its triangles.
        const NU: usize = 40;
        const NV: usize = 28;
        let vert = |i: usize, j: usize| {
            let (u, v) = (0.1 + 0.8 * i as f64 / NU as f64, top + (0.70 - top) * j as f64 / NV as f64);
            let (x, y) = (x_of(u), y_of(v));
            let z = mask_depth(x, y, pleats, v);
            // Normal from central differences of the depth field.
            let h = 1e-3;
            let (dzx, dzy) = (
                (mask_depth(x + h, y, pleats, v) - mask_depth(x - h, y, pleats, v)) / (2.0 * h),
                (mask_depth(x, y + h, pleats, v + h / 3.45) - mask_depth(x, y - h, pleats, v - h / 3.45)) / (2.0 * h),
            );
            let nl = (dzx * dzx + dzy * dzy + 1.0).sqrt();
            let lambert = ((-dzx * light[0] - dzy * light[1] + light[2]) / (nl * ln)).max(0.0);
            // Feather over the outermost ring of cells.
            let edge = [i as f64, (NU - i) as f64, j as f64, (NV - j) as f64].into_iter().fold(f64::INFINITY, f64::min);
            (project([x, y, z]), 0.35 + 0.65 * lambert, (edge / 1.5).min(1.0))
        };
        let verts: Vec<(Point, f64, f64)> =
            (0..=NV).flat_map(|j| (0..=NU).map(move |i| (i, j))).map(|(i, j)| vert(i, j)).collect();
        let at = |i: usize, j: usize| verts[j * (NU + 1) + i];
        for j in 0..NV {
            for i in 0..NU {
                let (a, b, c, d) = (at(i, j), at(i + 1, j), at(i + 1, j + 1), at(i, j + 1));
                triangle(img, [a, b, c], color);
                triangle(img, [a, c, d], color);
            }
        }
        crate::choices::MaskInfo {
            synthesizer: crate::choices::Synthesizer::Renderer,
            kind: "full",
            color: color.map(|x| (x * 255.0).round().clamp(0.0, 255.0) as u8),
            pattern: if pleats > 0.0 { "pleated" } else { "plain" }.into(),
        }
    }
}

/// Fills a triangle (vertices: position, shade, coverage) with `color`, interpolating shade
/// and coverage; triangles seen from behind (turned away) are skipped.
fn triangle(img: &mut Rgb, t: [(Point, f64, f64); 3], color: [f64; 3]) {
    let [(p0, s0, a0), (p1, s1, a1), (p2, s2, a2)] = t;
    let area = (p1[0] - p0[0]) * (p2[1] - p0[1]) - (p1[1] - p0[1]) * (p2[0] - p0[0]);
    if area <= 1e-9 {
        return;
    }
    let xs = [p0[0], p1[0], p2[0]];
    let ys = [p0[1], p1[1], p2[1]];
    let x0 = xs.iter().cloned().fold(f64::INFINITY, f64::min).floor().max(0.0) as usize;
    let x1 = (xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max).ceil() as usize).min(img.width);
    let y0 = ys.iter().cloned().fold(f64::INFINITY, f64::min).floor().max(0.0) as usize;
    let y1 = (ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max).ceil() as usize).min(img.height);
    for y in y0..y1 {
        for x in x0..x1 {
            let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
            let w0 = ((p1[0] - px) * (p2[1] - py) - (p1[1] - py) * (p2[0] - px)) / area;
            let w1 = ((p2[0] - px) * (p0[1] - py) - (p2[1] - py) * (p0[0] - px)) / area;
            let w2 = 1.0 - w0 - w1;
            if w0 < 0.0 || w1 < 0.0 || w2 < 0.0 {
                continue;
            }
            let shade = w0 * s0 + w1 * s1 + w2 * s2;
            let alpha = w0 * a0 + w1 * a1 + w2 * a2;
            let px = &mut img.data[(y * img.width + x) * 3..][..3];
            for (k, p) in px.iter_mut().enumerate() {
                *p = (*p as f64 * (1.0 - alpha) + 255.0 * (color[k] * shade).clamp(0.0, 1.0) * alpha).round() as u8;
            }
        }
    }
}
