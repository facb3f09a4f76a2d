//! Face key points from five landmarks, and homographies fitted to point pairs.

pub type Point = [f64; 2];

/// ArcFace's 112×112 alignment template: left eye, right eye, nose tip, mouth corners.
pub const ARCFACE_112: [Point; 5] =
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];

/// The six mask key points on the ArcFace template face: left and right cheek at nose
/// height, nose bridge, left and right jaw at lip height, chin.
const KEYPOINTS_112: [Point; 6] = [[23.0, 72.0], [89.0, 72.0], [56.0, 60.0], [26.0, 93.0], [86.0, 93.0], [56.0, 112.0]];

/// The six key points of a face with these five landmarks: the template's, carried by the
/// least-squares affine map from the template landmarks to these.
pub fn face_keypoints(landmarks: &[Point; 5]) -> [Point; 6] {
    let a = fit_affine(&ARCFACE_112, landmarks);
    KEYPOINTS_112.map(|p| [a[0] * p[0] + a[1] * p[1] + a[2], a[3] * p[0] + a[4] * p[1] + a[5]])
}

/// Least-squares affine `[a b c; d e f]` mapping `src` to `dst`.
fn fit_affine(src: &[Point], dst: &[Point]) -> [f64; 6] {
    // Normal equations of [x y 1]·(a b c) = x', shared by both output rows.
    let mut m = [[0.0; 3]; 3];
    let (mut bx, mut by) = ([0.0; 3], [0.0; 3]);
    for (s, d) in src.iter().zip(dst) {
        let r = [s[0], s[1], 1.0];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] += r[i] * r[j];
            }
            bx[i] += r[i] * d[0];
            by[i] += r[i] * d[1];
        }
    }
    let (x, y) = (
        solve(m.iter().map(|r| r.to_vec()).collect(), bx.to_vec()),
        solve(m.iter().map(|r| r.to_vec()).collect(), by.to_vec()),
    );
    [x[0], x[1], x[2], y[0], y[1], y[2]]
}

/// Solves `a·x = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs())).unwrap();
        a.swap(c, p);
        b.swap(c, p);
        let (upper, lower) = a.split_at_mut(c + 1);
        let pivot = &upper[c];
        for (r, row) in lower.iter_mut().enumerate() {
            let f = row[c] / pivot[c];
            row[c..].iter_mut().zip(&pivot[c..]).for_each(|(x, &p)| *x -= f * p);
            b[c + 1 + r] -= f * b[c];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        x[r] = (b[r] - (r + 1..n).map(|k| a[r][k] * x[k]).sum::<f64>()) / a[r][r];
    }
    x
}

/// A plane projective map `p ↦ (H·[p, 1])` dehomogenised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Homography(pub [f64; 9]);

impl Homography {
    /// The least-squares homography taking each `src[i]` to `dst[i]` (≥ 4 pairs), fitted in
    /// Hartley-normalised coordinates (centroid at 0, mean distance √2) for conditioning.
    pub fn fit(src: &[Point], dst: &[Point]) -> Homography {
        assert!(src.len() >= 4 && src.len() == dst.len(), "a homography needs at least 4 point pairs");
        let (ts, td) = (normaliser(src), normaliser(dst));
        let (s, d): (Vec<Point>, Vec<Point>) =
            (src.iter().map(|&p| ts.apply(p)).collect(), dst.iter().map(|&p| td.apply(p)).collect());
        // Each pair gives two linear equations in h11…h32 (h33 = 1): normal equations.
        let mut ata = vec![vec![0.0; 8]; 8];
        let mut atb = vec![0.0; 8];
        for (s, d) in s.iter().zip(&d) {
            let (x, y, u, v) = (s[0], s[1], d[0], d[1]);
            for (row, rhs) in
                [([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y], u), ([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y], v)]
            {
                for i in 0..8 {
                    for j in 0..8 {
                        ata[i][j] += row[i] * row[j];
                    }
                    atb[i] += row[i] * rhs;
                }
            }
        }
        let h = solve(ata, atb);
        let hn = Homography([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0]);
        td.inverse().then(&hn.then(&ts))
    }

    /// `self ∘ other`: apply `other`, then `self`.
    pub fn then(&self, other: &Homography) -> Homography {
        let (a, b) = (&self.0, &other.0);
        let mut m = [0.0; 9];
        for r in 0..3 {
            for c in 0..3 {
                m[r * 3 + c] = (0..3).map(|k| a[r * 3 + k] * b[k * 3 + c]).sum();
            }
        }
        Homography(m)
    }

    pub fn apply(&self, p: Point) -> Point {
        let h = &self.0;
        let w = h[6] * p[0] + h[7] * p[1] + h[8];
        [(h[0] * p[0] + h[1] * p[1] + h[2]) / w, (h[3] * p[0] + h[4] * p[1] + h[5]) / w]
    }

    /// The inverse map (adjugate; scale does not matter for a homography).
    pub fn inverse(&self) -> Homography {
        let [a, b, c, d, e, f, g, h, i] = self.0;
        Homography([
            e * i - f * h,
            c * h - b * i,
            b * f - c * e,
            f * g - d * i,
            a * i - c * g,
            c * d - a * f,
            d * h - e * g,
            b * g - a * h,
            a * e - b * d,
        ])
    }
}

/// The similarity moving `pts`' centroid to 0 and their mean distance to √2.
fn normaliser(pts: &[Point]) -> Homography {
    let n = pts.len() as f64;
    let (cx, cy) = (pts.iter().map(|p| p[0]).sum::<f64>() / n, pts.iter().map(|p| p[1]).sum::<f64>() / n);
    let mean = pts.iter().map(|p| (p[0] - cx).hypot(p[1] - cy)).sum::<f64>() / n;
    let s = if mean > 0.0 { std::f64::consts::SQRT_2 / mean } else { 1.0 };
    Homography([s, 0.0, -s * cx, 0.0, s, -s * cy, 0.0, 0.0, 1.0])
}
