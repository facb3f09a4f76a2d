//! The weak-perspective camera posing the mean head on a face from its five landmarks:
//! image = s·(R·P)ₓᵧ + t with R = roll·yaw·pitch. Yaw and pitch are fitted by Gauss–Newton
//! on the landmark residual left by the best 2D similarity (scale, roll, shift: closed
//! form), with a weak pull toward a frontal pose so a noisy nose does not swing the head.

use crate::geometry::Point;

#[derive(Clone, Copy, Debug)]
pub struct Camera {
    /// Rotation rows (head frame → camera frame; camera z toward the viewer).
    pub r: [[f64; 3]; 3],
    /// Pixels per head unit.
    pub scale: f64,
    pub shift: Point,
    /// The mean head's nose is shorter than many; on a strongly turned face (≈ 55°)
    /// the fit cannot bring its tip out to the photo's, so the nose tip's landmark lay past
    /// the mask's silhouette, bare. The tip's residual along the eye line (px; the nose's
    /// length shows across the face as the head turns; down it would dent the top edge) moves
    /// head points near the tip (this field's second part) with a Gaussian falloff in head
    /// units, nil at the eyes and mouth corners, so the mask's nose lands on the photo's.
    pub nose: (Point, [f64; 3]),
}

/// Falloff radius (head units) of the nose correction: ≈ 0.65 to the eyes and mouth corners.
const NOSE_REACH: f64 = 0.3;
/// The largest nose correction (head units).
const NOSE_SHIFT: f64 = 0.15;

impl Camera {
    /// Screen position and depth (larger: nearer the viewer) of head point `p`.
    pub fn project(&self, p: [f64; 3]) -> (Point, f64) {
        let q = self.r.map(|row| row[0] * p[0] + row[1] * p[1] + row[2] * p[2]);
        let (d, n) = self.nose;
        let w = (-(0..3).map(|k| (p[k] - n[k]).powi(2)).sum::<f64>() / (NOSE_REACH * NOSE_REACH)).exp();
        (
            [self.scale * q[0] + self.shift[0] + w * d[0], self.scale * q[1] + self.shift[1] + w * d[1]],
            self.scale * q[2],
        )
    }

    /// A camera-frame direction in the head frame (Rᵀ·d).
    pub fn head_dir(&self, d: [f64; 3]) -> [f64; 3] {
        let r = &self.r;
        [0, 1, 2].map(|k| r[0][k] * d[0] + r[1][k] * d[1] + r[2][k] * d[2])
    }

    /// The camera fitted to `lm` for the head's landmarks `model`.
    pub fn fit(model: &[[f64; 3]; 5], lm: &[Point; 5]) -> Camera {
        let mut p = [0.0f64; 2]; // yaw, pitch
                                 // A few Gauss–Newton steps with a numeric Jacobian; the prior rows keep it well posed.
        for _ in 0..6 {
            let r0 = residual(model, lm, p);
            let h = 1e-5;
            let cols: [[f64; 12]; 2] = [0, 1].map(|k| {
                let mut q = p;
                q[k] += h;
                let r1 = residual(model, lm, q);
                std::array::from_fn(|i| (r1[i] - r0[i]) / h)
            });
            let (mut a, mut b) = ([[0.0; 2]; 2], [0.0; 2]);
            for i in 0..12 {
                for r in 0..2 {
                    for c in 0..2 {
                        a[r][c] += cols[r][i] * cols[c][i];
                    }
                    b[r] -= cols[r][i] * r0[i];
                }
            }
            let det = a[0][0] * a[1][1] - a[0][1] * a[1][0];
            if det.abs() < 1e-12 {
                break;
            }
            let step = [(b[0] * a[1][1] - b[1] * a[0][1]) / det, (a[0][0] * b[1] - a[1][0] * b[0]) / det];
            p = [(p[0] + step[0]).clamp(-1.0, 1.0), (p[1] + step[1]).clamp(-0.4, 0.4)];
            if step[0].abs() + step[1].abs() < 1e-6 {
                break;
            }
        }
        let mut cam = similarity(model, lm, p).0;
        let (q, _) = cam.project(model[2]);
        // The head's x axis in the image (the eye line; its length is cos yaw).
        let e = [cam.r[0][0], cam.r[1][0]];
        let n = e[0] * e[0] + e[1] * e[1];
        let a = ((lm[2][0] - q[0]) * e[0] + (lm[2][1] - q[1]) * e[1]) / n;
        // At most NOSE_SHIFT head units: a nose landmark far off the face (a bad detection)
        // must not drag the mask with it.
        let (len, limit) = (a.abs() * n.sqrt(), NOSE_SHIFT * cam.scale);
        let a = if len > limit { a * limit / len } else { a };
        cam.nose = ([a * e[0], a * e[1]], model[2]);
        cam
    }
}

/// Rotation rows for yaw (about y), then pitch (about x) applied first, roll 0.
fn yaw_pitch(p: [f64; 2]) -> [[f64; 3]; 3] {
    let (sy, cy) = p[0].sin_cos();
    let (sp, cp) = p[1].sin_cos();
    // Ry(yaw)·Rx(pitch)
    [[cy, sy * sp, sy * cp], [0.0, cp, -sp], [-sy, cy * sp, cy * cp]]
}

/// The camera with this yaw and pitch whose similarity best fits the landmarks, and the
/// residuals (in head units) after it.
fn similarity(model: &[[f64; 3]; 5], lm: &[Point; 5], p: [f64; 2]) -> (Camera, [f64; 10]) {
    let rot = yaw_pitch(p);
    let a: [Point; 5] = model.map(|m| [0, 1].map(|k| rot[k][0] * m[0] + rot[k][1] * m[1] + rot[k][2] * m[2]));
    let mean = |q: &[Point; 5]| [0, 1].map(|k| q.iter().map(|x| x[k]).sum::<f64>() / 5.0);
    let (ma, mb) = (mean(&a), mean(lm));
    // Complex least squares b = z·a: z = Σ conj(a)·b / Σ|a|².
    let (mut zr, mut zi, mut n) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(lm) {
        let (ax, ay, bx, by) = (x[0] - ma[0], x[1] - ma[1], y[0] - mb[0], y[1] - mb[1]);
        zr += ax * bx + ay * by;
        zi += ax * by - ay * bx;
        n += ax * ax + ay * ay;
    }
    let (zr, zi) = (zr / n, zi / n);
    let scale = zr.hypot(zi).max(1e-9);
    let (c, s) = (zr / scale, zi / scale);
    let roll = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]];
    let r = roll.map(|row| [0, 1, 2].map(|k| row[0] * rot[0][k] + row[1] * rot[1][k] + row[2] * rot[2][k]));
    let shift = [mb[0] - (zr * ma[0] - zi * ma[1]), mb[1] - (zi * ma[0] + zr * ma[1])];
    let cam = Camera { r, scale, shift, nose: ([0.0; 2], [0.0; 3]) };
    let mut res = [0.0; 10];
    for (i, (m, l)) in model.iter().zip(lm).enumerate() {
        let (q, _) = cam.project(*m);
        res[2 * i] = (q[0] - l[0]) / scale;
        res[2 * i + 1] = (q[1] - l[1]) / scale;
    }
    (cam, res)
}

/// Landmark residuals and the prior toward a frontal face.
fn residual(model: &[[f64; 3]; 5], lm: &[Point; 5], p: [f64; 2]) -> [f64; 12] {
    let (_, r) = similarity(model, lm, p);
    let mut out = [0.0; 12];
    out[..10].copy_from_slice(&r);
    out[10] = 0.03 * p[0];
    // Pitch rests on the nose's height alone, which faces vary in: pull it harder.
    out[11] = 0.2 * p[1];
    out
}
