//! Compositing the rasterised mask onto the photo: coverage from the outline's distance in
//! pixels (anti-aliased) times the facing ramp; the fabric's colour × the printed texture,
//! lit by the head's normals and the texture's relief, brought to the photo's brightness;
//! a soft contact shadow on the skin just outside the edges.

use super::outline::Outline;
use super::raster::{GBuffer, EMPTY};
use super::textures::Texture;
use crate::geometry::Point;
use maskfr_io::image_codec::Rgb;

pub struct Look {
    pub color: [f64; 3],
    pub texture: &'static Texture,
    /// Texels of level 0 across and down the whole mask.
    pub texels: [f64; 2],
    pub ambient: f64,
    /// Strength of the relief's shading and of the sheen.
    pub relief: f64,
    pub sheen: f64,
    /// Contact shadow: darkening at the edge and its width in pixels.
    pub shadow: f64,
    pub shadow_px: f64,
    /// The eyes' landmarks and a radius (px) around them the mask never enters: a face whose
    /// proportions or pose the mean head misjudges must still keep its eyes.
    pub eyes: [Point; 2],
    pub eye_clear: f64,
}

fn luminance(p: &[u8]) -> f64 {
    (0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64) / 255.0
}

/// Coverage of buffer pixel `i` (its distance inside both the outline and the silhouette)
/// and its distance (px, > 0 inside) to the outline.
fn coverage(g: &GBuffer, i: usize, outline: &Outline) -> (f64, f64) {
    let s = &g.px[i];
    let j = s.jac.map(|r| r.map(|x| x as f64));
    let d = outline.inside_px(s.uv[0] as f64, s.uv[1] as f64, &j);
    ((0.5 + d.min(s.facing as f64)).clamp(0.0, 1.0), d)
}

pub fn composite(img: &mut Rgb, g: &GBuffer, outline: &Outline, look: &Look) {
    // The photo's brightness under the mask sets the mask's (a white mask in a dim photo is grey).
    let cover: Vec<(f64, f64)> = (0..g.px.len())
        .map(|i| if g.px[i].z == EMPTY { (0.0, f64::NEG_INFINITY) } else { coverage(g, i, outline) })
        .collect();
    let (mut sum, mut n) = (0.0, 0.0);
    for y in 0..g.h {
        for x in 0..g.w {
            if cover[y * g.w + x].0 > 0.5 {
                sum += luminance(&img.data[((g.y0 + y) * img.width + g.x0 + x) * 3..][..3]);
                n += 1.0;
            }
        }
    }
    let light = if n > 0.0 { (sum / n / 0.5).clamp(0.4, 1.25).powf(0.6) } else { 1.0 };
    let reach = 3.0 * look.shadow_px;
    for y in 0..g.h {
        for x in 0..g.w {
            let i = y * g.w + x;
            let s = &g.px[i];
            if s.z == EMPTY {
                continue;
            }
            let (px, py) = ((g.x0 + x) as f64 + 0.5, (g.y0 + y) as f64 + 0.5);
            let eye = look
                .eyes
                .iter()
                .map(|e| ((e[0] - px).powi(2) + (e[1] - py).powi(2)).sqrt())
                .fold(f64::INFINITY, f64::min);
            let clear = (eye - look.eye_clear).clamp(0.0, 1.0);
            let (cov, d) = (cover[i].0 * clear, cover[i].1);
            let out = (-d).max(0.0);
            if cov <= 0.0 && out >= reach {
                continue;
            }
            // The edge touches the skin only where the surface faces the viewer: no contact
            // shadow along a silhouette.
            let touching = (s.facing as f64 / 2.0).clamp(0.0, 1.0);
            let shadow = if out < reach {
                look.shadow * (-out / look.shadow_px).exp() * (1.0 - out / reach) * touching * clear
            } else {
                0.0
            };
            let mut col = [0.0; 3];
            if cov > 0.0 {
                let (u, v) = (s.uv[0] as f64, s.uv[1] as f64);
                let (ms, mt) = outline.mask_st(u, v);
                let (t, _) = outline.top(u);
                let (l, _) = outline.low(u);
                let (du, dv) = (look.texels[0] / (outline.u1 - outline.u0), look.texels[1] / (l - t));
                let (ax, ay) = (s.jac[0][0] as f64 * du, s.jac[1][0] as f64 * dv);
                let (bx, by) = (s.jac[0][1] as f64 * du, s.jac[1][1] as f64 * dv);
                let fp = (ax * ax + ay * ay).max(bx * bx + by * by).sqrt();
                let [alb, gs, gt] = look.texture.sample(ms, mt, fp);
                // The relief tilts the normal toward its downhill side: lit where it faces the light.
                let bump = -look.relief * (gs as f64 * s.lt[0] as f64 + gt as f64 * s.lt[1] as f64);
                let shade = (look.ambient + (1.0 - look.ambient) * (s.diffuse as f64 + bump)).max(0.05) * light;
                col = look.color.map(|c| c * alb as f64 * shade + look.sheen * s.spec as f64 * light);
            }
            let p = &mut img.data[((g.y0 + y) * img.width + g.x0 + x) * 3..][..3];
            for (k, q) in p.iter_mut().enumerate() {
                let bg = *q as f64 * (1.0 - shadow);
                *q = (bg * (1.0 - cov) + 255.0 * col[k].clamp(0.0, 1.0) * cov).round() as u8;
            }
        }
    }
}
