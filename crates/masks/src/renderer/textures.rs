//! The printed mask textures: commodity masks drawn flat in the mask's own coordinates (s
//! across, t down), built by code at first use (insightface's renderer prints photographs of
//! masks, which we may not ship). Each texel holds an albedo factor (× the mask's colour)
//! and the slope of the fabric's relief (pleats, hems, seams), which shades with the light.
//! Sampled bilinearly from a mip level matching the pixel's footprint.

use maskfr_core::random::uniform;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Three pleats, stitched hems, a nose wire, welded ear-loop attachments.
    Surgical,
    /// A folded respirator: a centre seam and a welded border.
    Kn95,
    /// Woven cotton with a centre seam and a stitched hem.
    Cloth,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Surgical => "surgical",
            Kind::Kn95 => "kn95",
            Kind::Cloth => "cloth",
        }
    }
}

/// Texture size at level 0: the mask's flat aspect (≈ 17.5 × 9.5 cm), fine enough for
/// stitches on large faces.
pub const W: usize = 256;
pub const H: usize = 128;

/// A texel: albedo factor, relief slope along s and along t (relief units per texel).
type Texel = [f32; 3];

pub struct Texture {
    /// Level k is (W >> k) × (H >> k).
    levels: Vec<Vec<Texel>>,
}

impl Texture {
    /// The texel at (s, t) ∈ [0, 1]², `texels_per_px` of level 0 per screen pixel.
    pub fn sample(&self, s: f64, t: f64, texels_per_px: f64) -> Texel {
        let k = [2.0, 4.0, 8.0].iter().filter(|&&l| texels_per_px >= l).count().min(self.levels.len() - 1);
        let (w, h) = (W >> k, H >> k);
        let lv = &self.levels[k];
        let x = (s * w as f64 - 0.5).clamp(0.0, (w - 1) as f64);
        let y = (t * h as f64 - 0.5).clamp(0.0, (h - 1) as f64);
        let (x0, y0) = (x as usize, y as usize);
        let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
        let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
        let (a, b, c, d) = (lv[y0 * w + x0], lv[y0 * w + x1], lv[y1 * w + x0], lv[y1 * w + x1]);
        std::array::from_fn(|i| {
            let top = a[i] + (b[i] - a[i]) * fx;
            let bottom = c[i] + (d[i] - c[i]) * fx;
            top + (bottom - top) * fy
        })
    }
}

/// The texture of `kind`, built once.
pub fn texture(kind: Kind) -> &'static Texture {
    static CELLS: [OnceLock<Texture>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = kind as usize;
    CELLS[i].get_or_init(|| build(kind))
}

fn smooth(e0: f64, e1: f64, x: f64) -> f64 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

fn gauss(x: f64, w: f64) -> f64 {
    (-(x / w) * (x / w)).exp()
}

/// Dots on a line of pitch `p` texels: 1 at a dot's centre.
fn dots(along: f64, across: f64, p: f64) -> f64 {
    let d = along / p - (along / p).round();
    gauss(d * p, 0.6) * gauss(across, 0.6)
}

/// Fibre noise: white noise blurred along s, in [-1, 1].
fn fibres(x: usize, y: usize, seed: u64) -> f64 {
    let n = |dx: usize| uniform(seed, (y * (W + 4) + x + dx) as u64);
    (n(0) + n(1) + n(2) + n(3)) / 2.0 - 1.0
}

fn build(kind: Kind) -> Texture {
    // Relief h and albedo a per texel; coordinates in texels (x across, y down).
    let (mut h, mut a) = (vec![0.0f64; W * H], vec![1.0f64; W * H]);
    let (wf, hf) = (W as f64, H as f64);
    for y in 0..H {
        for x in 0..W {
            let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
            let (s, t) = (px / wf, py / hf);
            let i = y * W + x;
            let edge = px.min(wf - px).min(2.0 * py.min(hf - py)); // texels from the nearest edge
            match kind {
                Kind::Surgical => {
                    let band = 11.0; // hem width, texels (top/bottom), half that at the sides
                    let hem =
                        1.0 - smooth(band - 1.5, band + 0.5, py.min(hf - py)).min(smooth(7.0, 9.0, px.min(wf - px)));
                    h[i] += 0.8 * hem;
                    // Pressed hems: a shade darker, a seam line where they end.
                    a[i] -= 0.05 * hem;
                    a[i] -= 0.14 * (gauss(py - band, 0.8) + gauss(hf - py - band, 0.8));
                    // Two rows of embossed stitch dots along each hem.
                    for row in [3.5, 7.5] {
                        for d in [py - row, hf - py - row] {
                            if px.min(wf - px) > 8.0 {
                                a[i] -= 0.2 * dots(px, d, 3.0);
                                h[i] -= 0.4 * dots(px, d, 3.0);
                            }
                        }
                        for d in [px - row * 0.6, wf - px - row * 0.6] {
                            a[i] -= 0.1 * dots(py, d, 3.0);
                        }
                    }
                    // Nose wire in the top hem, middle third.
                    let wire = smooth(0.3 * wf, 0.34 * wf, px) * (1.0 - smooth(0.66 * wf, 0.7 * wf, px));
                    h[i] += 1.2 * wire * gauss(py - 5.0, 2.5);
                    a[i] -= 0.05 * wire * gauss(py - 2.0, 0.8);
                    // Ear-loop welds in the corners.
                    let corner =
                        (1.0 - smooth(7.0, 9.0, px.min(wf - px))) * (1.0 - smooth(11.0, 13.0, py.min(hf - py)));
                    a[i] += 0.05 * corner * (1.0 + ((px * 1.6).sin() * (py * 1.6).sin()));
                    // Three pleats: each a ramp ending in an overlapping fold (a dark crease
                    // under a lit lip).
                    let body = (py - 0.2 * hf) / (0.2 * hf);
                    if (0.0..3.0).contains(&body) {
                        let f = body - body.floor();
                        h[i] += 1.6 * f;
                    }
                    for k in 1..=3 {
                        let crease = py - (0.2 + 0.2 * k as f64) * hf;
                        a[i] -= 0.22 * gauss(crease, 1.1);
                        a[i] += 0.06 * gauss(crease + 2.0, 1.2);
                    }
                }
                Kind::Kn95 => {
                    let seam = (px - wf / 2.0).abs();
                    h[i] += 1.5 * gauss(seam, 4.0);
                    a[i] -= 0.1 * gauss(seam, 1.2) + 0.1 * dots(py, seam - 2.5, 2.5);
                    // Welded border: a dotted line inset from every edge, the strip outside it denser.
                    let inset = 7.0;
                    for d in [px - inset, wf - px - inset] {
                        a[i] -= 0.14 * dots(py, d, 2.5);
                    }
                    for d in [py - inset * 0.8, hf - py - inset * 0.8] {
                        a[i] -= 0.14 * dots(px, d, 2.5);
                    }
                    a[i] -= 0.04 * (1.0 - smooth(inset - 1.0, inset + 1.0, edge));
                    h[i] -= 0.6 * (1.0 - smooth(inset - 1.0, inset + 1.0, edge));
                }
                Kind::Cloth => {
                    // Plain weave: threads over and under in 1-texel checks (a 2-texel period,
                    // which the first box-filtered level averages out instead of aliasing).
                    let over = if (x + y) % 2 == 0 { 1.0 } else { -1.0 };
                    a[i] += 0.025 * over;
                    h[i] += 0.08 * over;
                    // Wrinkles.
                    h[i] += 2.0 * (s * 9.0 + (t * 5.0).sin()).sin() * (t * 3.0 + 1.0).sin() * 0.3;
                    // Centre seam and a stitched hem (dashes).
                    let seam = (px - wf / 2.0).abs();
                    h[i] += 1.0 * gauss(seam, 2.0);
                    a[i] -= 0.12 * gauss(seam, 0.8);
                    let dash = |along: f64| if (along / 5.0).fract() < 0.6 { 1.0 } else { 0.0 };
                    a[i] -= 0.12 * dash(py) * gauss(seam - 3.5, 0.6);
                    a[i] -= 0.12 * dash(px) * (gauss(py - 6.0, 0.6) + gauss(hf - py - 6.0, 0.6));
                    a[i] -= 0.12 * dash(py) * (gauss(px - 7.0, 0.6) + gauss(wf - px - 7.0, 0.6));
                    a[i] -= 0.05 * (1.0 - smooth(4.0, 6.0, edge));
                }
            }
            a[i] += 0.025 * fibres(x, y, 0x5EED + kind as u64);
        }
    }
    let mut level: Vec<Texel> = (0..W * H)
        .map(|i| {
            let (x, y) = (i % W, i / W);
            let hs = (h[y * W + (x + 1).min(W - 1)] - h[y * W + x.saturating_sub(1)]) / 2.0;
            let ht = (h[(y + 1).min(H - 1) * W + x] - h[y.saturating_sub(1) * W + x]) / 2.0;
            [a[i].clamp(0.0, 1.2) as f32, hs as f32, ht as f32]
        })
        .collect();
    let mut levels = vec![level.clone()];
    // Box-filtered levels down to 32 × 16 (slopes stay per level-0 texel).
    for k in 1..4 {
        let (w, hh) = (W >> k, H >> k);
        let prev = level;
        level = (0..w * hh)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let q = |dx: usize, dy: usize| prev[(2 * y + dy) * (2 * w) + 2 * x + dx];
                let (p0, p1, p2, p3) = (q(0, 0), q(1, 0), q(0, 1), q(1, 1));
                std::array::from_fn(|c| (p0[c] + p1[c] + p2[c] + p3[c]) / 4.0)
            })
            .collect();
        levels.push(level.clone());
    }
    Texture { levels }
}
