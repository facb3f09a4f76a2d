//! The mean head surface, parametrised by face UV as insightface's renderer's BFM mesh is:
//! u across the face (0.5 on the midline, 0 and 1 at the ears: u is the azimuth), v down it
//! (eyes 0.28, nose tip ≈ 0.43, mouth 0.58, chin ≈ 0.73). Past the jaw line v carries on
//! under the jaw toward the neck, so a mask's lower edge can wrap under the chin.
//!
//! Head frame: x right, y down, z toward the camera, in units where the eyes are 0.76 apart;
//! landmark proportions are ArcFace's 112² template's, so an aligned face fits frontally.

use std::f64::consts::PI;

/// Rise of y (head units) per unit of v on the face.
pub const Y_PER_V: f64 = 2.923;
/// y of the chin's bottom on the midline, and how much higher the jaw line is at the ears.
const CHIN_Y: f64 = 1.07;
const JAW_RISE: f64 = 0.35;
/// Depth of the face's front (z of the midline before features).
const FRONT: f64 = 0.85;

pub fn y_of(v: f64) -> f64 {
    -0.25 + (v - 0.28) * Y_PER_V
}

pub fn v_of(y: f64) -> f64 {
    0.28 + (y + 0.25) / Y_PER_V
}

fn theta(u: f64) -> f64 {
    (u - 0.5) * PI
}

/// v of the jaw line (where the face turns under) at u, and its derivative in u.
pub fn jaw_v(u: f64) -> (f64, f64) {
    let a = 2.0 * u - 1.0;
    (v_of(CHIN_Y - JAW_RISE * a * a), -JAW_RISE * 4.0 * a / Y_PER_V)
}

/// Half-width of the head's cross-section at height y: the cheeks, narrowing to the jaw.
fn half_width(y: f64) -> f64 {
    let d = ((y - 0.2) / 0.85).max(0.0);
    0.86 - 0.18 * d * d
}

fn bump(x: f64, w: f64) -> f64 {
    (-(x / w) * (x / w)).exp()
}

/// Nose, lips, chin and cheekbones on the front, as depth added at (x, y).
fn features(x: f64, y: f64) -> f64 {
    let ridge = if y < -0.2 {
        0.03
    } else if y < 0.184 {
        0.03 + 0.27 * (y + 0.2) / 0.384
    } else {
        0.3 * (1.0 - (y - 0.184) / 0.12).max(0.0)
    };
    ridge * bump(x, 0.11 + 0.08 * ((y + 0.2) / 0.4).clamp(0.0, 1.0))
        + 0.05 * bump(y - 0.63, 0.09) * bump(x, 0.3)
        + 0.05 * bump(y - 0.93, 0.1) * bump(x, 0.3)
        + 0.04 * bump(y - 0.05, 0.2) * bump(x.abs() - 0.5, 0.2)
}

/// The face's front at azimuth parameter u and height y.
fn front(u: f64, y: f64) -> [f64; 3] {
    let t = theta(u);
    let x = half_width(y) * t.sin();
    [x, y, FRONT * t.cos() + features(x, y)]
}

/// A smooth maximum (rounds the crease where the mask leaves the face).
fn smax(a: f64, b: f64) -> f64 {
    0.5 * (a + b + ((a - b) * (a - b) + 4e-4).sqrt())
}

/// How far the mask stands off the face at (u, y) on the front: stretched from the nose tip
/// to the chin and across the cheeks (it does not follow the nostrils, lips and chin).
fn tent_lift(u: f64, y: f64, z: f64) -> f64 {
    let x = half_width(y) * theta(u).sin();
    let bulge = if y < 0.184 {
        0.3 * ((y + 0.15) / 0.334).clamp(0.0, 1.0).powi(2)
    } else {
        0.3 + (0.06 - 0.3) * ((y - 0.184) / (CHIN_Y - 0.184)).min(1.0)
    };
    let tent = FRONT * theta(u).cos() + bulge * bump(x, 0.42);
    smax(z, tent) - z
}

/// The head surface at (u, v); `lift` > 0 gives the mask's surface instead: the tent scaled by
/// `lift` (0 at the mask's outline, 1 inside) plus a fabric thickness.
pub fn surface(u: f64, v: f64, lift: f64) -> [f64; 3] {
    let (jv, _) = jaw_v(u);
    let thick = 0.012 * lift.min(1.0);
    if v <= jv {
        let y = y_of(v);
        let p = front(u, y);
        return [p[0], p[1], p[2] + lift * tent_lift(u, y, p[2]) + thick];
    }
    // Under the jaw: a quadratic Bézier from the jaw point, leaving along the face's tangent,
    // to a point toward the neck; s is the distance walked past the jaw (head units).
    let jy = y_of(jv);
    let j = front(u, jy);
    let (a, b) = (front(u, jy - 0.01), j);
    let n = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2) + (b[2] - a[2]).powi(2)).sqrt();
    let c = [0, 1, 2].map(|k| j[k] + 0.15 * (b[k] - a[k]) / n);
    let e = [0.72 * j[0], j[1] + 0.28, j[2] - 0.5];
    let s = (v - jv) * Y_PER_V;
    let t = (s / 0.62).min(1.0);
    let mut p = [0, 1, 2].map(|k| (1.0 - t) * (1.0 - t) * j[k] + 2.0 * t * (1.0 - t) * c[k] + t * t * e[k]);
    if s > 0.62 {
        let d = [0, 1, 2].map(|k| e[k] - c[k]);
        let dn = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        (0..3).for_each(|k| p[k] += (s - 0.62) * d[k] / dn);
    }
    let fade = (1.0 - s / 0.1).max(0.0);
    p[2] += lift * tent_lift(u, jy, j[2]) * fade + thick;
    p
}

/// The five landmarks on the mean head (ArcFace order: eyes, nose tip, mouth corners), at
/// the ArcFace template's proportions.
pub fn landmarks() -> [[f64; 3]; 5] {
    let at = |x: f64, y: f64| {
        let u = 0.5 + (x / half_width(y)).asin() / PI;
        front(u, y)
    };
    [at(-0.38, -0.25), at(0.38, -0.25), at(0.0, 0.184), at(-0.315, 0.627), at(0.315, 0.627)]
}

/// Points on the side of the head where an ear loop hooks over the ear (`side` −1: the
/// image-left ear of a frontal face): the top and the bottom of the ear's root.
pub fn ear(side: f64) -> [[f64; 3]; 2] {
    [[side * 0.9, -0.12, -0.22], [side * 0.88, 0.35, -0.18]]
}
