//! The mask kinds in template space (100×80 around the six key points; the eyes lie near
//! (25, −8) and (75, −8), the nose tip near (50, 26), the mouth corners near (30, 55) and
//! (70, 55)): each kind's outline, its relief (pleats, folds, seams, cup) and its parts.

use super::gas;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaskShape {
    Surgical,
    N95,
    Kn95,
    Cloth,
    Gas,
}

pub const SHAPES: [MaskShape; 5] =
    [MaskShape::Surgical, MaskShape::N95, MaskShape::Kn95, MaskShape::Cloth, MaskShape::Gas];

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

    /// The shape called `name` (as [`MaskShape::name`] spells it).
    pub fn parse(name: &str) -> maskfr_core::Result<MaskShape> {
        SHAPES.iter().copied().find(|s| s.name() == name).ok_or_else(|| {
            maskfr_core::Error(format!("mask shape '{name}': expected one of surgical, n95, kn95, cloth, gas"))
        })
    }
}

/// What a template point is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The mask's fabric (pattern or user texture; the gas mask's rubber body).
    Fabric,
    /// Moulded plastic in the parts colour (filter cartridges, an N95's valve).
    Plastic,
    /// Dark plastic (the gas mask's exhalation valve cover).
    Dark,
    /// The metal nose clip of an N95.
    Metal,
}

/// The mask at one template point.
#[derive(Clone, Copy, Debug)]
pub struct Surf {
    /// Signed distance to the outline, template units, positive inside.
    pub sd: f64,
    /// Slopes of the mask's relief, dz/du and dz/dv (z toward the camera); the normal is
    /// (−gx, −gy, 1): gy > 0 faces up, toward the usual light.
    pub gx: f64,
    pub gy: f64,
    /// How much of the face's curvature (a cylinder across, tilting under the chin) the
    /// mask follows: 1 for fabric lying on the face, less for moulded shells.
    pub base: f64,
    /// Light multiplier for creases, seams and slots (1: open).
    pub ao: f64,
    pub part: Part,
    /// Specular strength (plastic, rubber, metal).
    pub gloss: f64,
}

impl Surf {
    fn fabric(sd: f64) -> Surf {
        Surf { sd, gx: 0.0, gy: 0.0, base: 1.0, ao: 1.0, part: Part::Fabric, gloss: 0.0 }
    }
}

/// A bell, ≈ exp(−t²) (as (1 − t²/8)⁸: a few multiplications, called a dozen times a pixel).
pub(super) fn bump(t: f64) -> f64 {
    let a = (1.0 - 0.125 * t * t).max(0.0);
    let a2 = a * a;
    let a4 = a2 * a2;
    a4 * a4
}

/// Polynomial smooth minimum (rounds the corner where two outlines meet, width `k`).
pub(super) fn smin(a: f64, b: f64, k: f64) -> f64 {
    let h = (k - (a - b).abs()).max(0.0) / k;
    a.min(b) - h * h * k * 0.25
}

/// A crease line at distance `d` from where it runs: 1 away from it, `1 − depth` on it.
pub(super) fn crease(d: f64, width: f64, depth: f64) -> f64 {
    1.0 - depth * bump(d / width)
}

/// Per-draw constants the shapes need besides the point.
#[derive(Clone, Copy, Debug)]
pub struct Detail {
    /// Template units per image pixel: detail finer than about two pixels is left out (it
    /// would alias into noise at 112²) and appears on larger faces.
    pub upp: f64,
    /// N95: an exhalation valve.
    pub valve: bool,
    /// Cloth: soft folds, three waves (direction·frequency, phase, amplitude).
    pub folds: [[f64; 4]; 3],
}

/// How visible a periodic detail of `period` template units is at this scale: 0 below two
/// pixels a period, 1 from four.
pub(super) fn resolvable(period: f64, upp: f64) -> f64 {
    ((period / upp - 2.0) * 0.5).clamp(0.0, 1.0)
}

impl MaskShape {
    /// The mask at template point (u, v); `u` already follows the nose (see `Pose`).
    pub(super) fn surface(self, u: f64, v: f64, d: &Detail) -> Surf {
        match self {
            MaskShape::Surgical => surgical(u, v, d),
            MaskShape::N95 => n95(u, v, d),
            MaskShape::Kn95 => kn95(u, v, d),
            MaskShape::Cloth => cloth(u, v, d),
            MaskShape::Gas => gas::respirator(u, v, d),
        }
    }
}

/// Pleated surgical mask: three horizontal pleats that open over the chin and gather at the
/// side bindings, hems, a nose wire under the top edge.
fn surgical(u: f64, v: f64, d: &Detail) -> Surf {
    let x = (u - 50.0) / 50.0;
    let ax = x.abs();
    let top = 5.5 + 11.0 * (x * x + 0.35 * ax) / 1.35;
    let bottom = 79.0 - 12.0 * x * x;
    let side = 48.5 - (u - 50.0).abs();
    let mut s = Surf::fabric((v - top).min(bottom - v).min(side));
    if s.sd < -4.0 {
        return s;
    }
    tent(&mut s, x, v);
    // Pleats: the upper layer folds over the lower one; its edge catches the light above a
    // shadow line. They fade into the side bindings, which hold them flat.
    let open = 1.0 - x * x;
    let strength = ((side - 4.5) / 2.0).clamp(0.0, 1.0);
    for (at_side, at_middle) in [(24.0, 27.0), (32.0, 40.0), (40.0, 53.0)] {
        let dv = v - (at_side + (at_middle - at_side) * open);
        s.gy += strength * (1.1 * bump((dv + 1.5) / 1.2) - 0.6 * bump((dv - 0.5) / 0.6));
        s.ao *= 1.0 - strength * 0.42 * bump((dv - 0.4) / 0.65);
    }
    // Side bindings: a double layer with a stitched inner border and weld dots.
    if side < 6.0 {
        s.ao *= crease(side - 4.8, 0.5, 0.3);
        if side < 4.8 {
            let dots = (u * 1.9).sin() * (v * 1.9).sin();
            s.ao *= 0.95 + 0.05 * resolvable(3.3, d.upp) * dots;
        }
    }
    // Top hem with the nose wire: a raised rod under the edge over the nose.
    let dt = v - top;
    s.ao *= crease(dt - 3.4, 0.5, 0.25) * crease(bottom - v - 3.0, 0.5, 0.22);
    if ax < 0.4 {
        let wire = ((0.4 - ax) / 0.05).min(1.0);
        s.gy += wire * 1.2 * (bump((dt - 1.1) / 0.6) - bump((dt - 2.4) / 0.6));
    }
    s
}

/// Fabric draped over the nose: its flanks turn toward the sides under the ridge.
fn tent(s: &mut Surf, x: f64, v: f64) {
    let t = x / 0.2;
    s.gx -= 0.7 * t / (1.0 + t.abs()) * bump((v - 18.0) / 16.0);
}

/// Moulded N95 cup: a dome with a flat flange at its rim, a centre seam, a metal nose clip,
/// sometimes an exhalation valve.
fn n95(u: f64, v: f64, d: &Detail) -> Surf {
    let (dx, dy) = (u - 50.0, v - 43.0);
    // Narrower over the nose than across the cheeks and chin.
    let narrow = ((30.0 - v) / 24.0).clamp(0.0, 1.0);
    let (rx, ry) = (41.0 - 10.0 * narrow * narrow, 37.0);
    let r2 = (dx / rx).powi(2) + (dy / ry).powi(2);
    let mut s = Surf::fabric((1.0 - r2.sqrt()) * ry);
    if s.sd < -4.0 {
        return s;
    }
    s.base = 0.35;
    // The cup: z = h·√(1 − r²), steepest toward the rim; the flat flange round it turns
    // with the cup's side, less steeply.
    let flange = 3.2;
    let z = (1.0 - r2).max(0.05).sqrt();
    let h = if s.sd > flange { 24.0 } else { 10.0 };
    s.gx = (-h * dx / (rx * rx) / z).clamp(-1.8, 1.8);
    s.gy = (-h * dy / (ry * ry) / z).clamp(-1.8, 1.8);
    // The flange's moulded edge: a groove where it meets the cup.
    s.ao *= crease(s.sd - flange, 0.55, 0.22) * crease(s.sd - 0.8, 0.5, 0.12);
    s.ao *= crease(dx, 0.5, 0.22);
    s.gx += 0.5 * (bump((dx + 0.9) / 0.6) - bump((dx - 0.9) / 0.6));
    // Nose clip: a metal strip bent over the nose under the top of the rim.
    if dy < -22.0 && dx.abs() < 11.0 && (1.4..4.2).contains(&s.sd) {
        s.part = Part::Metal;
        s.gloss = 0.9;
        s.gy = 0.7 - 0.35 * (s.sd - 1.4);
        s.gx = dx * 0.06;
        s.ao = crease(s.sd - 1.4, 0.35, 0.3) * crease(s.sd - 4.2, 0.35, 0.3);
    }
    if d.valve {
        valve(&mut s, dx, v - 53.0);
    }
    s
}

/// Signed distance inside a rounded rectangle of half sides `(a, b)` and corner radius `r`.
pub(super) fn rounded_rect(dx: f64, dy: f64, a: f64, b: f64, r: f64) -> f64 {
    let (qx, qy) = (dx.abs() - a + r, dy.abs() - b + r);
    r - (qx.max(0.0).powi(2) + qy.max(0.0).powi(2)).sqrt() - qx.max(qy).min(0.0)
}

/// An N95's exhalation valve: a domed plastic box with slots, casting a shadow on the cup.
fn valve(s: &mut Surf, dx: f64, dy: f64) {
    let sv = rounded_rect(dx, dy, 9.5, 8.0, 4.0);
    if sv < -2.2 {
        return;
    }
    if sv <= 0.0 {
        s.ao *= 1.0 - 0.4 * (1.0 + sv / 2.2).powi(2);
        return;
    }
    s.part = Part::Plastic;
    s.gloss = 0.5;
    s.gx = -0.11 * dx;
    s.gy = -0.12 * dy;
    s.ao = crease(sv - 1.3, 0.45, 0.35);
    if dx.abs() < 6.0 {
        for slot in [-3.6, 0.0, 3.6] {
            s.ao *= crease(dy - slot, 0.55, 0.55);
        }
    }
}

/// The KN95's hexagonal outline (two panels meeting in the vertical fold), clockwise.
const KN95: [[f64; 2]; 6] = [[50.0, 3.0], [96.0, 25.0], [90.0, 62.0], [50.0, 80.0], [10.0, 62.0], [4.0, 25.0]];

/// Signed distance to the edge from `a` to `b` (positive on the inner side of a clockwise
/// polygon).
fn edge(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let (ex, ey) = (b[0] - a[0], b[1] - a[1]);
    ((p[1] - a[1]) * ex - (p[0] - a[0]) * ey) / (ex * ex + ey * ey).sqrt()
}

/// KN95: two flat panels folded along the midline (lit differently), a welded seam all round
/// the edge, a nose wire in the top seam.
fn kn95(u: f64, v: f64, d: &Detail) -> Surf {
    let p = [u, v];
    let top = edge(p, KN95[5], KN95[0]).min(edge(p, KN95[0], KN95[1]));
    let rest = (1..5).map(|i| edge(p, KN95[i], KN95[i + 1])).fold(f64::INFINITY, f64::min);
    let mut s = Surf::fabric(smin(top, rest, 3.0));
    if s.sd < -4.0 {
        return s;
    }
    let dx = u - 50.0;
    // Each panel is a plane turned toward its side (and the top of the mask toward the
    // light): the fold between them is a sharp ridge.
    s.base = 0.45;
    s.gx = -0.75 * (dx / 1.2).clamp(-1.0, 1.0);
    s.gy = 0.25;
    s.ao *= crease(dx, 0.45, 0.25);
    // The welded seam along the edge: an embossed band with a crisp inner line.
    let band = 2.8;
    if s.sd < band {
        let hatch = ((u + v) * 2.2).sin() * ((u - v) * 2.2).sin();
        s.ao *= 0.94 + 0.06 * resolvable(2.0, d.upp) * hatch;
    }
    s.ao *= crease(s.sd - band, 0.45, 0.32);
    // The nose wire inside the top seam, over the nose.
    if dx.abs() < 17.0 && top < 6.0 {
        s.gy += 1.0 * (bump((top - 1.0) / 0.6) - bump((top - 2.3) / 0.6));
    }
    s
}

/// A sewn cloth mask: a contoured outline, a centre seam from nose to chin, a stitched hem
/// and soft folds.
fn cloth(u: f64, v: f64, d: &Detail) -> Surf {
    let x = (u - 50.0) / 50.0;
    let top = 5.0 + 15.0 * x * x;
    let bottom = 80.0 - 17.0 * x * x;
    let side = 48.5 - (u - 50.0).abs();
    let mut s = Surf::fabric(smin(smin(v - top, bottom - v, 5.0), side, 5.0));
    if s.sd < -4.0 {
        return s;
    }
    tent(&mut s, x, v);
    for [kx, ky, phase, amp] in d.folds {
        let c = (kx * u + ky * v + phase).cos() * amp;
        s.gx += c * kx;
        s.gy += c * ky;
    }
    // Wrinkles gathered toward the ear loops: they fan out from the side edges.
    let gather = (x.abs() - 0.55).max(0.0) * 2.2;
    if gather > 0.0 {
        let fan = (v - 40.0) / (50.0 - (u - 50.0).abs() + 12.0);
        s.gy += gather * 0.6 * (fan * 9.0 + d.folds[0][2]).sin();
    }
    // The centre seam: a groove with the fabric puffed either side of it.
    let dx = u - 50.0;
    s.ao *= crease(dx, 0.6, 0.4);
    s.gx += 0.6 * (bump((dx + 1.3) / 0.9) - bump((dx - 1.3) / 0.9));
    // The hem: a row of stitches inside the edge (a faint line where they are too small).
    let hem = 2.6;
    if (s.sd - hem).abs() < 0.7 {
        let stitch = if ((u + v) / 2.4).fract() < 0.55 { 1.08 } else { 0.88 };
        let r = resolvable(2.4, d.upp);
        s.ao *= r * stitch + (1.0 - r) * 0.93;
    }
    s.ao *= crease(s.sd - 0.9, 0.5, 0.12);
    s
}
