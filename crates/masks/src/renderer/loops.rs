//! Ear loops: thin elastic cords from the mask's side corners over the ear, drawn
//! anti-aliased (distance to the projected cord) on the side(s) of the head facing the viewer.

use super::camera::Camera;
use super::head::{ear, surface};
use super::outline::Outline;
use crate::geometry::Point;
use maskfr_io::image_codec::Rgb;

/// Cord thickness in head units (≈ 2.5 mm).
const THICK: f64 = 0.03;
const STEPS: usize = 12;

/// Distance from `p` to the segment a–b.
fn to_segment(p: Point, a: Point, b: Point) -> f64 {
    let (ex, ey) = (b[0] - a[0], b[1] - a[1]);
    let l2 = (ex * ex + ey * ey).max(1e-12);
    let t = (((p[0] - a[0]) * ex + (p[1] - a[1]) * ey) / l2).clamp(0.0, 1.0);
    let (dx, dy) = (p[0] - a[0] - t * ex, p[1] - a[1] - t * ey);
    (dx * dx + dy * dy).sqrt()
}

/// Draws both sides' loops in `color` (already lit), each as visible as its side of the
/// head faces the viewer.
pub fn draw(img: &mut Rgb, outline: &Outline, cam: &Camera, color: [f64; 3]) {
    let view = cam.head_dir([0.0, 0.0, 1.0]);
    for (side, u) in [(-1.0, outline.u0), (1.0, outline.u1)] {
        // The head's side there faces (side, 0, 0.35): hide the cord as it turns away.
        let facing = (side * view[0] + 0.35 * view[2]) / 1.06;
        let vis = ((facing - 0.05) / 0.15).clamp(0.0, 1.0);
        if vis <= 0.0 {
            continue;
        }
        let ears = ear(side);
        for (k, v) in [outline.top(u).0, outline.low(u).0].into_iter().enumerate() {
            let a = surface(u, v + if k == 0 { 0.01 } else { -0.01 }, 1.0);
            let b = ears[k];
            // The cord stands off the cheek: a Bézier bowed outward.
            let c = [0.5 * (a[0] + b[0]) + side * 0.12, 0.5 * (a[1] + b[1]), 0.5 * (a[2] + b[2]) + 0.1];
            let pts: Vec<Point> = (0..=STEPS)
                .map(|i| {
                    let t = i as f64 / STEPS as f64;
                    let q = [0, 1, 2].map(|d| (1.0 - t) * (1.0 - t) * a[d] + 2.0 * t * (1.0 - t) * c[d] + t * t * b[d]);
                    cam.project(q).0
                })
                .collect();
            let half = (0.5 * THICK * cam.scale).max(0.35);
            // Thinner than a pixel: fainter, not wider.
            let strength = (2.0 * half).min(1.0) * vis;
            let pad = half + 1.0;
            let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
            for p in &pts {
                for d in 0..2 {
                    lo[d] = lo[d].min(p[d] - pad);
                    hi[d] = hi[d].max(p[d] + pad);
                }
            }
            let clip = |x: f64, n: usize| (x.max(0.0) as usize).min(n);
            let (x0, x1) = (clip(lo[0], img.width), clip(hi[0] + 1.0, img.width));
            let (y0, y1) = (clip(lo[1], img.height), clip(hi[1] + 1.0, img.height));
            let bw = x1 - x0;
            // Each segment writes the cord's opacity (max over segments) around itself only.
            let mut alpha = vec![0.0f64; bw * (y1 - y0)];
            for seg in pts.windows(2) {
                let (sx0, sx1) =
                    (clip(seg[0][0].min(seg[1][0]) - pad, x1).max(x0), clip(seg[0][0].max(seg[1][0]) + pad + 1.0, x1));
                let (sy0, sy1) =
                    (clip(seg[0][1].min(seg[1][1]) - pad, y1).max(y0), clip(seg[0][1].max(seg[1][1]) + pad + 1.0, y1));
                for y in sy0..sy1 {
                    for x in sx0..sx1 {
                        let d = to_segment([x as f64 + 0.5, y as f64 + 0.5], seg[0], seg[1]);
                        let a = &mut alpha[(y - y0) * bw + x - x0];
                        *a = a.max((half + 0.5 - d).clamp(0.0, 1.0) * strength);
                    }
                }
            }
            for y in y0..y1 {
                for x in x0..x1 {
                    let a = alpha[(y - y0) * bw + x - x0];
                    if a <= 0.0 {
                        continue;
                    }
                    let px = &mut img.data[(y * img.width + x) * 3..][..3];
                    for (q, c) in px.iter_mut().zip(color) {
                        *q = (*q as f64 * (1.0 - a) + 255.0 * c.clamp(0.0, 1.0) * a).round() as u8;
                    }
                }
            }
        }
    }
}
