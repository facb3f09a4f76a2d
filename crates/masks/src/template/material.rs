//! What the mask is made of at a point: the printed fabric (a pattern in two colours, or a
//! user texture tiled over template space), the parts' plastics and metal, and the grain
//! that makes it look photographed rather than flat: fibre mottling, weave or knit, and a
//! little per-pixel colour noise.

use super::shapes::{resolvable, Part};
use super::Choice;
use crate::choices::Texture;
use crate::texture::{lattice, value_noise, Fabric};

/// The fabric's structure, for its grain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grain {
    /// Spun-bond non-woven (surgical, KN95, N95): mottled, fibrous.
    Nonwoven,
    /// Woven cotton: a fine cross-hatch.
    Woven,
    /// Knit jersey: rows of small Vs.
    Knit,
    /// Moulded rubber: nearly smooth.
    Rubber,
}

impl Texture {
    /// The colour (0–1) at (x, y) in texture pixels, tiled, bilinear.
    pub fn tiled(&self, x: f64, y: f64) -> [f64; 3] {
        let (w, h) = (self.image.width, self.image.height);
        let (fx, fy) = (x - x.floor(), y - y.floor());
        let (x0, y0) =
            ((x.floor() as i64).rem_euclid(w as i64) as usize, (y.floor() as i64).rem_euclid(h as i64) as usize);
        let (x1, y1) = ((x0 + 1) % w, (y0 + 1) % h);
        let px = |x: usize, y: usize, k: usize| self.image.data[(y * w + x) * 3 + k] as f64;
        [0, 1, 2].map(|k| {
            let top = px(x0, y0, k) + (px(x1, y0, k) - px(x0, y0, k)) * fx;
            let bottom = px(x0, y1, k) + (px(x1, y1, k) - px(x0, y1, k)) * fx;
            (top + (bottom - top) * fy) / 255.0
        })
    }

    /// The mean colour (0–1), from a 16×16 grid of samples (what the sidecar reports).
    pub fn mean_color(&self) -> [f64; 3] {
        let mut sum = [0.0; 3];
        for j in 0..16 {
            for i in 0..16 {
                let (x, y) = (i * self.image.width / 16, j * self.image.height / 16);
                let p = &self.image.data[(y * self.image.width + x) * 3..][..3];
                (0..3).for_each(|k| sum[k] += p[k] as f64 / 255.0);
            }
        }
        sum.map(|s| s / 256.0)
    }
}

/// A mask's materials, prepared once per mask.
pub struct Material<'a> {
    fabric: Fabric,
    cos: f64,
    sin: f64,
    texture: Option<(&'a Texture, f64, [f64; 2])>,
    colors: [[f64; 3]; 2],
    parts: [f64; 3],
    dark: [f64; 3],
    grain: Grain,
    seed: u64,
    /// Template units per pixel: grain finer than ~2 px is left to the pixel noise.
    upp: f64,
}

const METAL: [f64; 3] = [0.74, 0.75, 0.77];

impl<'a> Material<'a> {
    pub fn new(c: &'a Choice, upp: f64) -> Material<'a> {
        let texture = c.texture.as_deref().map(|t| {
            // One tile spans `tile` template units across (the mask is 100 wide), in texture
            // pixels per template unit.
            (t, t.image.width as f64 / c.look.tile, c.look.tile_offset)
        });
        Material {
            fabric: c.fabric,
            cos: c.fabric.angle.cos(),
            sin: c.fabric.angle.sin(),
            texture,
            colors: c.colors,
            parts: c.look.parts,
            dark: c.look.dark,
            grain: c.look.grain,
            seed: c.look.seed,
            upp,
        }
    }

    /// The base colour (0–1) of `part` at template point (u, v).
    pub fn albedo(&self, part: Part, u: f64, v: f64) -> [f64; 3] {
        match part {
            Part::Fabric => {
                let base = match self.texture {
                    Some((t, scale, [ox, oy])) => t.tiled(u * scale + ox, v * scale + oy),
                    None => {
                        let t = self.fabric.value_at(u, v, self.cos, self.sin, self.upp);
                        [0, 1, 2].map(|k| self.colors[0][k] + (self.colors[1][k] - self.colors[0][k]) * t)
                    }
                };
                let g = self.grain(u, v);
                base.map(|x| x * g)
            }
            Part::Plastic => self.parts,
            Part::Dark => self.dark,
            Part::Metal => METAL,
        }
    }

    /// The fabric's grain at (u, v): a brightness factor around 1.
    fn grain(&self, u: f64, v: f64) -> f64 {
        let mottle = value_noise(u * 0.33, v * 0.33, self.seed) - 0.5;
        match self.grain {
            Grain::Nonwoven => {
                let fibres = resolvable(1.2, self.upp);
                let f = if fibres > 0.0 {
                    fibres * (value_noise(u * 1.6 + v * 0.4, v * 0.25, self.seed ^ 1) - 0.5)
                } else {
                    0.0
                };
                1.0 + 0.1 * mottle + 0.12 * f
            }
            Grain::Woven => {
                let r = resolvable(1.6, self.upp);
                let weave = if r > 0.0 { ((u * 3.9).sin() * (v * 3.9).sin()).abs() - 0.5 } else { 0.0 };
                1.0 + 0.06 * mottle + 0.16 * r * weave
            }
            Grain::Knit => {
                let r = resolvable(1.4, self.upp);
                let knit = if r > 0.0 {
                    let across = (u / 1.4).fract() - 0.5;
                    ((v + 1.2 * across.abs()) * 4.5).sin()
                } else {
                    0.0
                };
                1.0 + 0.06 * mottle + 0.1 * r * knit
            }
            Grain::Rubber => 1.0 + 0.03 * mottle,
        }
    }

    /// Per-pixel photographic noise at image pixel (x, y): a brightness jitter, and a colour
    /// one scaled by `colour` (none in a black-and-white photo).
    pub fn pixel_noise(&self, x: usize, y: usize, colour: f64) -> [f64; 3] {
        let l = lattice(x as i64, y as i64, self.seed ^ 0x5eed) - 0.5;
        let c = colour * (lattice(y as i64, x as i64, self.seed ^ 0xc010) - 0.5);
        let k = if self.grain == Grain::Rubber { 0.03 } else { 0.05 };
        [1.0 + k * l + 0.02 * c, 1.0 + k * l, 1.0 + k * l - 0.02 * c]
    }
}
