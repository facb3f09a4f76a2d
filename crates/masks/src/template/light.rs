//! Where the face is and how it is lit: the pose read from the landmarks (scale, how far the
//! head is turned, where the eyes are), the lower face's brightness and side-to-side light,
//! and the shading of a mask lying on the lower face (a cylinder across, turning under the
//! chin), turned with the head.

use super::TEMPLATE_KEYPOINTS;
use crate::geometry::{face_keypoints, Homography, Point, ARCFACE_112};
use crate::photo_colour::PhotoColour;
use maskfr_io::image_codec::Rgb;
use std::sync::OnceLock;

/// The face's pose as the mask needs it.
#[derive(Clone, Copy, Debug)]
pub struct Pose {
    /// How far the nose tip lies off the template's midline (template units): a turned
    /// head's nose moves toward the far cheek, and the mask's ridge with it.
    pub shift: f64,
    /// The head's turn (radians, positive: the nose toward +u), for the shading.
    pub yaw: f64,
    /// Template units per image pixel at the mask's centre.
    pub upp: f64,
    eyes: [Point; 2],
    guard2: f64,
}

/// Where the ArcFace template's nose tip falls in template space (u): the frontal reference.
fn frontal_nose_u() -> f64 {
    static U: OnceLock<f64> = OnceLock::new();
    *U.get_or_init(|| {
        let h = Homography::fit(&TEMPLATE_KEYPOINTS, &face_keypoints(&ARCFACE_112));
        h.inverse().apply(ARCFACE_112[2])[0]
    })
}

/// Nose shift (template units) of a head turned by about 30°, for the yaw estimate.
const SHIFT_AT_30: f64 = 12.0;

impl Pose {
    pub fn new(landmarks: &[Point; 5], h: &Homography, inv: &Homography) -> Pose {
        let shift = (inv.apply(landmarks[2])[0] - frontal_nose_u()).clamp(-22.0, 22.0);
        let yaw = (0.5 * shift / SHIFT_AT_30).clamp(-0.9, 0.9).asin();
        let (c, x, y) = (h.apply([50.0, 40.0]), h.apply([51.0, 40.0]), h.apply([50.0, 41.0]));
        let area = ((x[0] - c[0]) * (y[1] - c[1]) - (x[1] - c[1]) * (y[0] - c[0])).abs();
        let upp = if area > 1e-12 { 1.0 / area.sqrt() } else { 1.0 };
        let eye_dist = (landmarks[1][0] - landmarks[0][0]).hypot(landmarks[1][1] - landmarks[0][1]);
        Pose { shift, yaw, upp, eyes: [landmarks[0], landmarks[1]], guard2: (0.16 * eye_dist).powi(2) }
    }

    /// Template u with the midline moved to the nose: the far side of a turned face is
    /// squeezed, the near side stretched; the outline's ends (u = 0, 100) stay. The nose tip
    /// stands out furthest, so moves most; the bridge between the eyes (top) and the chin
    /// much less.
    pub fn follow(&self, u: f64, v: f64) -> f64 {
        let depth = if v < 26.0 { 0.3 + 0.7 * (v - 4.0).max(0.0) / 22.0 } else { 1.0 - 0.5 * (v - 26.0) / 54.0 };
        let c = 50.0 + self.shift * depth.clamp(0.3, 1.0);
        if u < c {
            50.0 * u / c
        } else {
            50.0 + 50.0 * (u - c) / (100.0 - c)
        }
    }

    /// Nothing is drawn near the eye centres, whatever the landmarks.
    pub fn clear_of_eyes(&self, x: f64, y: f64) -> bool {
        self.eyes.iter().all(|e| (x - e[0]).powi(2) + (y - e[1]).powi(2) > self.guard2)
    }
}

/// What the photograph tells about its light.
#[derive(Clone, Copy, Debug)]
pub struct Scene {
    /// The lower face's mean luminance (0–1).
    pub lum: f64,
    /// Its left-to-right brightness difference (−1…1), split at the nose.
    pub side: f64,
    pub photo: PhotoColour,
}

/// Reads the scene: the key points' bounding box (split at the nose) for brightness, the
/// whole image for its colour.
pub fn scene(img: &Rgb, kp: &[Point; 6]) -> Scene {
    let lum = |p: &[u8]| (0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64) / 255.0;
    let (x0, x1) = bounds(kp.iter().map(|p| p[0]), img.width);
    let (y0, y1) = bounds(kp.iter().map(|p| p[1]), img.height);
    let mid = (kp[2][0].max(0.0) as usize).clamp(x0, x1);
    let (mut sum, mut n) = ([0.0; 2], [0usize; 2]);
    for y in y0..y1 {
        for x in x0..x1 {
            let side = usize::from(x >= mid);
            sum[side] += lum(&img.data[(y * img.width + x) * 3..][..3]);
            n[side] += 1;
        }
    }
    let mean = |s: usize| if n[s] > 0 { sum[s] / n[s] as f64 } else { 0.5 };
    let all = if n[0] + n[1] > 0 { (sum[0] + sum[1]) / (n[0] + n[1]) as f64 } else { 0.5 };
    let (l, r) = (mean(0), mean(1));
    Scene { lum: all, side: if l + r > 0.0 { (r - l) / (r + l) } else { 0.0 }, photo: PhotoColour::of(img) }
}

/// The pixel range `[lo, hi)` covering these coordinates, clipped to `[0, limit)`.
pub fn bounds(xs: impl Iterator<Item = f64>, limit: usize) -> (usize, usize) {
    let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    (lo.floor().clamp(0.0, limit as f64) as usize, (hi.ceil() + 1.0).clamp(0.0, limit as f64) as usize)
}

/// Directional light with ambient, on a mask that turns with the head.
#[derive(Clone, Copy, Debug)]
pub struct Light {
    l: [f64; 3],
    half: [f64; 3],
    ambient: f64,
    cos_yaw: f64,
    sin_yaw: f64,
}

fn normalize(v: [f64; 3]) -> [f64; 3] {
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    v.map(|x| x / n)
}

impl Light {
    /// `dir`: the light's (x, y) seen from the face (y < 0: from above), z toward the camera.
    pub fn new(dir: [f64; 2], ambient: f64, yaw: f64) -> Light {
        let l = normalize([dir[0], dir[1], 1.0]);
        Light { l, half: normalize([l[0], l[1], l[2] + 1.0]), ambient, cos_yaw: yaw.cos(), sin_yaw: yaw.sin() }
    }

    /// (diffuse shade, specular) of the mask at face position x = (u − 50)/50 and height v
    /// with relief slopes (gx, gy), following the face's curvature by `base`. The diffuse
    /// shade is 1 on a patch facing the camera.
    pub fn shade(&self, x: f64, v: f64, gx: f64, gy: f64, base: f64) -> (f64, f64) {
        let xc = x.clamp(-1.0, 1.0);
        let cyl = -1.1 * xc / (1.0 - 0.7 * xc * xc).sqrt();
        let tilt = 0.9 * (35.0 - v) / 45.0;
        let (nx, ny) = (-(gx + base * cyl), -(gy + base * tilt));
        let inv = 1.0 / (nx * nx + ny * ny + 1.0).sqrt();
        let n = [(nx * self.cos_yaw + self.sin_yaw) * inv, ny * inv, (self.cos_yaw - nx * self.sin_yaw) * inv];
        let dot = |a: &[f64; 3]| (n[0] * a[0] + n[1] * a[1] + n[2] * a[2]).max(0.0);
        let diffuse = self.ambient + (1.0 - self.ambient) * dot(&self.l) / self.l[2];
        let mut spec = dot(&self.half);
        for _ in 0..5 {
            spec *= spec; // ^32
        }
        (diffuse.min(1.35), spec)
    }
}
