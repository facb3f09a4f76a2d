//! The mask's mesh (a UV grid that follows the outline, with a margin of bare head around it
//! so the face hides what is behind it) rasterised front-to-back into a per-pixel buffer of
//! surface attributes. Coverage is not decided here: the buffer keeps the UV and its screen
//! Jacobian, from which the outline's distance in pixels gives anti-aliased edges that do not
//! depend on the triangles (no sawtooth), and a facing ramp that fades the surface out where
//! it turns away (the chin's silhouette) within a pixel.

use super::camera::Camera;
use super::head::surface;
use super::outline::Outline;
use crate::geometry::Point;

/// Grid cells across and down the mask (≈ 2 px at 112², fine enough for the silhouette).
const NU: usize = 44;
const NV: usize = 28;
/// Margins of bare head around the outline, in u and in v.
const MARGIN_U: f64 = 0.035;
const MARGIN_V: f64 = 0.035;
/// Facing (cos of the angle to the view) at which the surface is taken to turn away.
const GRAZING: f64 = 0.1;

#[derive(Clone, Copy, Debug)]
pub struct Vertex {
    pub p: Point,
    pub z: f64,
    pub uv: [f64; 2],
    /// Normal · direction to the viewer.
    pub facing: f64,
    /// Wrapped Lambert term and specular term of the light.
    pub diffuse: f64,
    pub spec: f64,
    /// The light along the surface's u and v directions (for the texture's relief).
    pub lt: [f64; 2],
}

/// One pixel's front-most surface.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub z: f32,
    pub uv: [f32; 2],
    /// ∂(u, v)/∂(x, y).
    pub jac: [[f32; 2]; 2],
    /// Signed distance (px, > 0 inside) to where the surface turns away (its silhouette).
    pub facing: f32,
    pub diffuse: f32,
    pub spec: f32,
    pub lt: [f32; 2],
}

pub const EMPTY: f32 = f32::NEG_INFINITY;

/// The attribute buffer over the mesh's screen bounding box.
pub struct GBuffer {
    pub x0: usize,
    pub y0: usize,
    pub w: usize,
    pub h: usize,
    pub px: Vec<Sample>,
}

/// Light and view, as directions in the head frame.
pub struct Lighting {
    pub light: [f64; 3],
    pub view: [f64; 3],
    pub half: [f64; 3],
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn unit(a: [f64; 3]) -> [f64; 3] {
    let n = dot(a, a).sqrt().max(1e-12);
    a.map(|x| x / n)
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

/// The mesh's vertices, row by row ((NU + 1) × (NV + 1)).
pub fn mesh(outline: &Outline, cam: &Camera, lighting: &Lighting) -> Vec<Vertex> {
    let uv: Vec<[f64; 2]> = (0..=NV)
        .flat_map(|j| (0..=NU).map(move |i| (i, j)))
        .map(|(i, j)| {
            let u = outline.u0 - MARGIN_U + (outline.u1 - outline.u0 + 2.0 * MARGIN_U) * i as f64 / NU as f64;
            let (t, l) = (outline.top(u).0 - MARGIN_V, outline.low(u).0 + MARGIN_V);
            [u, t + (l - t) * j as f64 / NV as f64]
        })
        .collect();
    let pos: Vec<[f64; 3]> = uv
        .iter()
        .map(|&[u, v]| {
            let lift = (outline.inside_uv(u, v) / 0.05).clamp(0.0, 1.0);
            surface(u, v, lift * lift * (3.0 - 2.0 * lift))
        })
        .collect();
    let at = |i: usize, j: usize| pos[j * (NU + 1) + i];
    (0..=NV)
        .flat_map(|j| (0..=NU).map(move |i| (i, j)))
        .map(|(i, j)| {
            let tu = sub(at((i + 1).min(NU), j), at(i.saturating_sub(1), j));
            let tv = sub(at(i, (j + 1).min(NV)), at(i, j.saturating_sub(1)));
            let n = unit(cross(tu, tv));
            let (p, z) = cam.project(at(i, j));
            let nl = dot(n, lighting.light);
            Vertex {
                p,
                z,
                uv: uv[j * (NU + 1) + i],
                facing: dot(n, lighting.view),
                diffuse: ((nl + 0.3) / 1.3).max(0.0),
                spec: dot(n, lighting.half).max(0.0).powi(16),
                lt: [dot(unit(tu), lighting.light), dot(unit(tv), lighting.light)],
            }
        })
        .collect()
}

impl GBuffer {
    /// Rasterises the mesh into a buffer over its bounding box within a `width × height` image.
    pub fn render(verts: &[Vertex], width: usize, height: usize) -> GBuffer {
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for v in verts {
            for k in 0..2 {
                lo[k] = lo[k].min(v.p[k]);
                hi[k] = hi[k].max(v.p[k]);
            }
        }
        let clip = |x: f64, n: usize| x.clamp(0.0, n as f64) as usize;
        let (x0, y0) = (clip(lo[0].floor(), width), clip(lo[1].floor(), height));
        let (x1, y1) = (clip(hi[0].ceil() + 1.0, width), clip(hi[1].ceil() + 1.0, height));
        let empty =
            Sample { z: EMPTY, uv: [0.0; 2], jac: [[0.0; 2]; 2], facing: 0.0, diffuse: 0.0, spec: 0.0, lt: [0.0; 2] };
        let mut g = GBuffer { x0, y0, w: x1 - x0, h: y1 - y0, px: vec![empty; (x1 - x0) * (y1 - y0)] };
        let at = |i: usize, j: usize| &verts[j * (NU + 1) + i];
        for j in 0..NV {
            for i in 0..NU {
                let (a, b, c, d) = (at(i, j), at(i + 1, j), at(i + 1, j + 1), at(i, j + 1));
                g.triangle([a, b, c]);
                g.triangle([a, c, d]);
            }
        }
        g
    }

    /// One triangle, if it faces the viewer: depth-tested, attributes interpolated.
    fn triangle(&mut self, t: [&Vertex; 3]) {
        let [p0, p1, p2] = t.map(|v| v.p);
        let (e1, e2) = ([p1[0] - p0[0], p1[1] - p0[1]], [p2[0] - p0[0], p2[1] - p0[1]]);
        let area = e1[0] * e2[1] - e1[1] * e2[0];
        if area <= 1e-9 {
            return;
        }
        // Inverse of the edge matrix [e1 e2]: screen offsets → barycentric (w1, w2).
        let inv = [[e2[1] / area, -e2[0] / area], [-e1[1] / area, e1[0] / area]];
        let grad = |f: [f64; 3]| {
            let (d1, d2) = (f[1] - f[0], f[2] - f[0]);
            [d1 * inv[0][0] + d2 * inv[1][0], d1 * inv[0][1] + d2 * inv[1][1]]
        };
        let gu = grad(t.map(|v| v.uv[0]));
        let gv = grad(t.map(|v| v.uv[1]));
        let gf = grad(t.map(|v| v.facing));
        let gf_len = (gf[0] * gf[0] + gf[1] * gf[1]).sqrt().max(1e-9);
        let jac = [[gu[0] as f32, gu[1] as f32], [gv[0] as f32, gv[1] as f32]];
        let xs = [p0[0], p1[0], p2[0]];
        let ys = [p0[1], p1[1], p2[1]];
        let lo = |a: [f64; 3], o: usize, n: usize| {
            (a.iter().cloned().fold(f64::INFINITY, f64::min).floor().max(o as f64) as usize).min(o + n)
        };
        let hi = |a: [f64; 3], o: usize, n: usize| {
            (a.iter().cloned().fold(f64::NEG_INFINITY, f64::max).ceil().max(o as f64) as usize).min(o + n)
        };
        let (bx0, bx1) = (lo(xs, self.x0, self.w), hi(xs, self.x0, self.w));
        let (by0, by1) = (lo(ys, self.y0, self.h), hi(ys, self.y0, self.h));
        for y in by0..by1 {
            for x in bx0..bx1 {
                let (dx, dy) = (x as f64 + 0.5 - p0[0], y as f64 + 0.5 - p0[1]);
                let w1 = dx * inv[0][0] + dy * inv[0][1];
                let w2 = dx * inv[1][0] + dy * inv[1][1];
                let w0 = 1.0 - w1 - w2;
                if w0 < 0.0 || w1 < 0.0 || w2 < 0.0 {
                    continue;
                }
                let mix = |f: fn(&Vertex) -> f64| w0 * f(t[0]) + w1 * f(t[1]) + w2 * f(t[2]);
                let z = mix(|v| v.z) as f32;
                let s = &mut self.px[(y - self.y0) * self.w + (x - self.x0)];
                if z <= s.z {
                    continue;
                }
                let facing = mix(|v| v.facing);
                *s = Sample {
                    z,
                    uv: [mix(|v| v.uv[0]) as f32, mix(|v| v.uv[1]) as f32],
                    jac,
                    facing: ((facing - GRAZING) / gf_len).min(1e3) as f32,
                    diffuse: mix(|v| v.diffuse) as f32,
                    spec: mix(|v| v.spec) as f32,
                    lt: [mix(|v| v.lt[0]) as f32, mix(|v| v.lt[1]) as f32],
                };
            }
        }
    }
}
