//! Procedural mask fabrics: patterns mixing two colours, evaluated at template coordinates.

use maskfr_core::random::{mix, uniform};

/// A fabric pattern; `value` returns the share of the second colour at a point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    Solid,
    Stripes,
    Checks,
    Dots,
    Gradient,
    Camo,
    Plaid,
    Zigzag,
    Floral,
    Speckle,
    Chevron,
    Waves,
}

pub const PATTERNS: [Pattern; 12] = [
    Pattern::Solid,
    Pattern::Stripes,
    Pattern::Checks,
    Pattern::Dots,
    Pattern::Gradient,
    Pattern::Camo,
    Pattern::Plaid,
    Pattern::Zigzag,
    Pattern::Floral,
    Pattern::Speckle,
    Pattern::Chevron,
    Pattern::Waves,
];

/// Hash of an integer lattice point to [0, 1).
fn lattice(x: i64, y: i64, seed: u64) -> f64 {
    uniform(mix(seed, x as u64), y as u64)
}

/// Smooth value noise in [0, 1).
fn value_noise(x: f64, y: f64, seed: u64) -> f64 {
    let (xi, yi) = (x.floor() as i64, y.floor() as i64);
    let (fx, fy) = (x - x.floor(), y - y.floor());
    let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
    let l = |dx, dy| lattice(xi + dx, yi + dy, seed);
    let top = l(0, 0) + (l(1, 0) - l(0, 0)) * sx;
    let bottom = l(0, 1) + (l(1, 1) - l(0, 1)) * sx;
    top + (bottom - top) * sy
}

/// Parameters of one fabric: pattern, period (template units), angle, seed.
#[derive(Clone, Copy, Debug)]
pub struct Fabric {
    pub pattern: Pattern,
    pub period: f64,
    pub angle: f64,
    pub seed: u64,
}

impl Fabric {
    /// Share of the second colour at template point (u, v).
    pub fn value(&self, u: f64, v: f64) -> f64 {
        let (c, s) = (self.angle.cos(), self.angle.sin());
        let (x, y) = ((u * c + v * s) / self.period, (-u * s + v * c) / self.period);
        let frac = |t: f64| t - t.floor();
        let square = |t: f64| if frac(t) < 0.5 { 1.0 } else { 0.0 };
        match self.pattern {
            Pattern::Solid => 0.0,
            Pattern::Stripes => square(x),
            Pattern::Checks => (square(x) + square(y)) % 2.0,
            Pattern::Dots => {
                let (dx, dy) = (frac(x) - 0.5, frac(y) - 0.5);
                if dx.hypot(dy) < 0.25 {
                    1.0
                } else {
                    0.0
                }
            }
            Pattern::Gradient => (v / 80.0).clamp(0.0, 1.0),
            Pattern::Camo => {
                let n = value_noise(x * 0.7, y * 0.7, self.seed);
                if n < 0.4 {
                    0.0
                } else if n < 0.6 {
                    0.5
                } else {
                    1.0
                }
            }
            Pattern::Plaid => {
                0.5 * (square(x * 2.0) * 0.6 + square(y * 2.0) * 0.6).min(1.0) + 0.5 * square(x) * square(y)
            }
            Pattern::Zigzag => square(x + (frac(y) - 0.5).abs()),
            Pattern::Floral => {
                let (dx, dy) = (frac(x) - 0.5, frac(y) - 0.5);
                let r = dx.hypot(dy);
                let petals = 0.25 + 0.12 * (5.0 * dy.atan2(dx)).cos();
                if r < 0.07 {
                    0.6
                } else if r < petals {
                    1.0
                } else {
                    0.0
                }
            }
            Pattern::Speckle => {
                if lattice((u * 1.7) as i64, (v * 1.7) as i64, self.seed) < 0.15 {
                    1.0
                } else {
                    0.0
                }
            }
            Pattern::Chevron => square(x * 0.5 + (y - y.floor() - 0.5).abs()),
            Pattern::Waves => square(y + 0.3 * (x * std::f64::consts::TAU).sin()),
        }
    }
}
