//! The mask's outline in face UV: the top edge across the nose (full) or under it (half), the
//! sides on the cheeks, and the lower edge a little past the jaw line, so it follows the jaw
//! and wraps under the chin. Each edge is a curve v(u) or a line u = const; the signed
//! distance to it is turned into pixels by the screen-space UV Jacobian at draw time.

use super::head::{jaw_v, Y_PER_V};

#[derive(Clone, Copy, Debug)]
pub struct Outline {
    /// Side edges.
    pub u0: f64,
    pub u1: f64,
    /// Top edge on the midline, and how much lower it reaches the sides.
    pub top: f64,
    pub sag: f64,
    /// A KN95's top edge: a ridge over the nose (|u − 0.5| shaped) instead of a curve.
    pub peaked: bool,
    /// How far the lower edge lies past the jaw line (head units, along the surface).
    pub wrap: f64,
}

impl Outline {
    /// Top edge's v at u and dv/du.
    pub fn top(&self, u: f64) -> (f64, f64) {
        let a = (u - 0.5) / (0.5 - self.u0);
        if self.peaked {
            let r = (a * a + 0.01).sqrt();
            (self.top + self.sag * r, self.sag * a / r / (0.5 - self.u0))
        } else {
            (self.top + self.sag * a * a, 2.0 * self.sag * a / (0.5 - self.u0))
        }
    }

    /// Lower edge's v at u and dv/du.
    pub fn low(&self, u: f64) -> (f64, f64) {
        let (v, dv) = jaw_v(u);
        (v + self.wrap / Y_PER_V, dv)
    }

    /// Signed distance (pixels, positive inside) to the outline at (u, v), given the
    /// Jacobian `j` = ∂(u, v)/∂(x, y) of the screen-to-UV map there.
    pub fn inside_px(&self, u: f64, v: f64, j: &[[f64; 2]; 2]) -> f64 {
        let (t, dt) = self.top(u);
        let (l, dl) = self.low(u);
        // Each edge: its value (>0 inside) and gradient in UV, divided by its screen gradient.
        let edges = [(v - t, -dt, 1.0), (l - v, dl, -1.0), (u - self.u0, 1.0, 0.0), (self.u1 - u, -1.0, 0.0)];
        edges
            .iter()
            .map(|&(f, gu, gv)| {
                let gx = gu * j[0][0] + gv * j[1][0];
                let gy = gu * j[0][1] + gv * j[1][1];
                f / (gx * gx + gy * gy).sqrt().max(1e-12)
            })
            .fold(f64::INFINITY, f64::min)
    }

    /// Distance inside the outline in UV (for the tent's fade near the edges).
    pub fn inside_uv(&self, u: f64, v: f64) -> f64 {
        let (t, _) = self.top(u);
        let (l, _) = self.low(u);
        (v - t).min(l - v).min(u - self.u0).min(self.u1 - u)
    }

    /// The mask's own coordinates (s across, t down, both in [0, 1] on the mask) of (u, v).
    pub fn mask_st(&self, u: f64, v: f64) -> (f64, f64) {
        let (t, _) = self.top(u);
        let (l, _) = self.low(u);
        ((u - self.u0) / (self.u1 - self.u0), (v - t) / (l - t))
    }
}
