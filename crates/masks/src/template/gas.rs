//! A half-face respirator: a rubber facepiece from the nose bridge to under the chin with a
//! face-seal flange and a moulded frame, two round filter cartridges with ribbed faces on
//! the sides, an exhalation valve cover with slots under the mouth.

use super::shapes::{bump, crease, resolvable, rounded_rect, Detail, Part, Surf};

/// The facepiece's half width at height v (piecewise linear through these points).
const HALF_WIDTH: [(f64, f64); 10] = [
    (4.5, 0.0),
    (6.0, 6.0),
    (10.0, 12.5),
    (17.0, 21.5),
    (28.0, 31.0),
    (44.0, 36.0),
    (60.0, 35.0),
    (72.0, 27.0),
    (79.0, 16.0),
    (83.0, 0.0),
];

fn half_width(v: f64) -> (f64, f64) {
    for w in HALF_WIDTH.windows(2) {
        let ((v0, w0), (v1, w1)) = (w[0], w[1]);
        if v < v1 {
            let slope = (w1 - w0) / (v1 - v0);
            return (w0 + slope * (v - v0).max(0.0), slope);
        }
    }
    (0.0, 0.0)
}

/// Cartridge centre (left side; the right one mirrored) and radii: seen turned toward the
/// side of the face, so narrower than tall.
const CARTRIDGE: [f64; 2] = [12.5, 55.0];
const CART_R: [f64; 2] = [14.0, 17.0];

pub fn respirator(u: f64, v: f64, d: &Detail) -> Surf {
    let dx = u - 50.0;
    let (w, slope) = half_width(v);
    // Horizontal distance to the side, shortened where the side slants (top and chin).
    let body = ((w - dx.abs()) / (1.0 + slope * slope).sqrt()).min(v - HALF_WIDTH[0].0).min(HALF_WIDTH[9].0 - v);
    let side = if dx < 0.0 { -1.0 } else { 1.0 };
    let (cx, cy) = (50.0 + side * (50.0 - CARTRIDGE[0]), CARTRIDGE[1]);
    let (ex, ey) = ((u - cx) / CART_R[0], (v - cy) / CART_R[1]);
    let rn = (ex * ex + ey * ey).sqrt();
    let cart = (1.0 - rn) * CART_R[0];
    let sd = body.max(cart);
    let mut s = Surf { sd, gx: 0.0, gy: 0.0, base: 0.6, ao: 1.0, part: Part::Fabric, gloss: 0.25 };
    if sd < -4.0 {
        return s;
    }
    if cart > 0.0 {
        cartridge(&mut s, ex, ey, rn, side, d);
        return s;
    }
    // The rubber body bulges: z ∝ √(1 − (dx/w)²) across, the nose cover rising at the top.
    let t = (dx / (w + 2.0)).clamp(-0.97, 0.97);
    s.gx = -0.9 * t / (1.0 - t * t).sqrt();
    s.gy = 0.5 * bump((v - 14.0) / 10.0) - 0.3 * bump((v - 74.0) / 6.0);
    // The face-seal flange: flatter, set off by a moulded lip.
    let lip = 3.6;
    if body < lip {
        s.gx *= 0.3;
        s.ao *= 0.9;
    }
    s.ao *= crease(body - lip, 0.6, 0.4) * crease(body - 0.8, 0.45, 0.15);
    // The rigid frame: two moulded lines from the nose down to the valve.
    if (8.0..50.0).contains(&v) {
        let at = 4.0 + 0.28 * (v - 8.0);
        s.ao *= crease(dx.abs() - at, 0.55, 0.28);
        s.gx += side * 0.6 * bump((dx.abs() - at - 0.9) / 0.7);
    }
    // The cartridges' shadow on the body.
    if cart > -2.5 {
        s.ao *= 1.0 - 0.45 * (1.0 + cart / 2.5).powi(2);
    }
    valve(&mut s, dx, v - 62.0);
    s
}

/// A round filter cartridge: a bevelled rim, concentric ribs (as many as the scale shows),
/// a raised hub; its face turned toward the side of the head.
fn cartridge(s: &mut Surf, ex: f64, ey: f64, rn: f64, side: f64, d: &Detail) {
    s.part = Part::Plastic;
    s.base = 0.3;
    s.gloss = 0.55;
    s.gx = -side * 0.8;
    s.gy = 0.15;
    if rn > 0.8 {
        // The rim's bevel faces outward.
        let k = 2.2 * (rn - 0.8) / 0.2;
        s.gx += k * ex / rn;
        s.gy += k * ey / rn;
        s.ao *= crease(rn - 0.8, 0.03, 0.35);
    } else if rn > 0.25 {
        // Ribs: a period of at least 2.5 pixels so they stay ribs, not noise.
        let period = (0.11f64).max(2.5 * d.upp / CART_R[0]);
        let phase = (rn - 0.25) / period * std::f64::consts::TAU;
        s.ao *= 1.0 - 0.22 * (0.5 + 0.5 * phase.cos()) * resolvable(period * CART_R[0], d.upp).max(0.4);
        s.gx += 0.5 * phase.sin() * ex / rn;
        s.gy += 0.5 * phase.sin() * ey / rn;
    } else {
        s.gx += -1.5 * ex;
        s.gy += -1.5 * ey;
        s.ao *= crease(rn - 0.25, 0.03, 0.3);
    }
}

/// The exhalation valve cover under the mouth: dark plastic with horizontal slots.
fn valve(s: &mut Surf, dx: f64, dy: f64) {
    let sv = rounded_rect(dx, dy, 11.0, 9.5, 4.5);
    if sv < -2.5 {
        return;
    }
    if sv <= 0.0 {
        s.ao *= 1.0 - 0.5 * (1.0 + sv / 2.5).powi(2);
        return;
    }
    s.part = Part::Dark;
    s.gloss = 0.6;
    s.base = 0.4;
    s.gx = -0.09 * dx;
    s.gy = 0.3 - 0.1 * dy;
    s.ao = crease(sv - 1.4, 0.5, 0.35);
    if dx.abs() < 7.5 {
        for slot in [-4.8, -1.6, 1.6, 4.8] {
            s.ao *= crease(dy - slot, 0.6, 0.6);
        }
    }
}
