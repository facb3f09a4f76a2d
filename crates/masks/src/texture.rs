//! Procedural mask fabrics: patterns mixing two colours, evaluated at template coordinates,
//! and the value noise they (and the fabric's grain) are made of.

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

/// Hash of an integer lattice point to [0, 1): a few multiply-xorshift rounds (a cheap
/// hash, called several times per mask pixel; statistical quality is not needed here).
pub(crate) fn lattice(x: i64, y: i64, seed: u64) -> f64 {
    let mut h = (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F) ^ seed;
    h ^= h >> 32;
    h = h.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    h ^= h >> 32;
    h = h.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    (h >> 40) as f64 * (1.0 / (1u64 << 24) as f64)
}

/// Smooth value noise in [0, 1).
pub(crate) fn value_noise(x: f64, y: f64, seed: u64) -> f64 {
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
    /// Share of the second colour at template point (u, v), with sharp edges.
    pub fn value(&self, u: f64, v: f64) -> f64 {
        self.value_at(u, v, self.angle.cos(), self.angle.sin(), 0.0)
    }

    /// [`Fabric::value`] with the angle's cosine and sine given (computed once per mask) and
    /// edges blurred over `footprint` template units (a pixel's size: anti-aliased print).
    pub fn value_at(&self, u: f64, v: f64, c: f64, s: f64, footprint: f64) -> f64 {
        let (x, y) = ((u * c + v * s) / self.period, (-u * s + v * c) / self.period);
        // The footprint in pattern periods; edges ramp over it.
        let w = (footprint / self.period).max(1e-6);
        let frac = |t: f64| t - t.floor();
        let edge = |d: f64, w: f64| (0.5 + d / w).clamp(0.0, 1.0);
        // 1 on the first half of each period, 0 on the second, ramps at both edges.
        let square = |t: f64, w: f64| {
            let f = frac(t);
            edge(if f < 0.5 { f.min(0.5 - f) } else { -(f - 0.5).min(1.0 - f) }, w)
        };
        match self.pattern {
            Pattern::Solid => 0.0,
            Pattern::Stripes => square(x, w),
            Pattern::Checks => {
                let (a, b) = (square(x, w), square(y, w));
                a + b - 2.0 * a * b
            }
            Pattern::Dots => {
                let (dx, dy) = (frac(x) - 0.5, frac(y) - 0.5);
                edge(0.25 - (dx * dx + dy * dy).sqrt(), w)
            }
            Pattern::Gradient => (v / 80.0).clamp(0.0, 1.0),
            Pattern::Camo => {
                let n = value_noise(x * 0.7, y * 0.7, self.seed);
                0.5 * edge(n - 0.4, w) + 0.5 * edge(n - 0.6, w)
            }
            Pattern::Plaid => {
                0.5 * (square(x * 2.0, 2.0 * w) * 0.6 + square(y * 2.0, 2.0 * w) * 0.6).min(1.0)
                    + 0.5 * square(x, w) * square(y, w)
            }
            Pattern::Zigzag => square(x + (frac(y) - 0.5).abs(), 1.5 * w),
            Pattern::Floral => {
                let (dx, dy) = (frac(x) - 0.5, frac(y) - 0.5);
                let r = (dx * dx + dy * dy).sqrt();
                let petals = 0.25 + 0.12 * (5.0 * dy.atan2(dx)).cos();
                edge(petals - r, w) - 0.4 * edge(0.07 - r, w)
            }
            Pattern::Speckle => {
                if lattice((u * 1.7) as i64, (v * 1.7) as i64, self.seed) < 0.15 {
                    1.0
                } else {
                    0.0
                }
            }
            Pattern::Chevron => square(x * 0.5 + (y - y.floor() - 0.5).abs(), w),
            Pattern::Waves => square(y + 0.3 * (x * std::f64::consts::TAU).sin(), 1.5 * w),
        }
    }
}

impl Pattern {
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Solid => "solid",
            Pattern::Stripes => "stripes",
            Pattern::Checks => "checks",
            Pattern::Dots => "dots",
            Pattern::Gradient => "gradient",
            Pattern::Camo => "camo",
            Pattern::Plaid => "plaid",
            Pattern::Zigzag => "zigzag",
            Pattern::Floral => "floral",
            Pattern::Speckle => "speckle",
            Pattern::Chevron => "chevron",
            Pattern::Waves => "waves",
        }
    }

    /// The pattern called `name` (as [`Pattern::name`] spells it).
    pub fn parse(name: &str) -> maskfr_core::Result<Pattern> {
        PATTERNS.iter().copied().find(|p| p.name() == name).ok_or_else(|| {
            let all: Vec<_> = PATTERNS.iter().map(|p| p.name()).collect();
            maskfr_core::Error(format!("mask pattern '{name}': expected one of {}", all.join(", ")))
        })
    }
}
