//! The renderer synthesizer, as insightface's mask renderer does it: a mask texture printed
//! in face UV on a head surface posed from the five landmarks, then drawn onto the photo.
//! Ours: a parametric mean head (head), a weak-perspective camera fitted to the landmarks
//! (camera), the mask's outline in UV — top across the nose (full, insightface's
//! positions [0.1, 0.33–0.40, 0.9, ·]) or under it (half, [0.1, 0.5, 0.9, ·]), the lower
//! edge along the jaw and under the chin (outline), a z-buffered mesh (raster), generated
//! commodity-mask textures (textures), shading and contact shadow (shade), ear loops (loops).

mod camera;
mod head;
mod loops;
mod outline;
mod raster;
mod shade;
mod textures;

use crate::choices::{MaskInfo, Synthesizer};
use crate::geometry::Point;
use crate::photo_colour::PhotoColour;
use camera::Camera;
use maskfr_core::random::Stream;
use maskfr_io::image_codec::Rgb;
use outline::Outline;
use raster::{GBuffer, Lighting};
use textures::Kind;

/// Commodity colours and their default probabilities (white, light blue, black, green, grey, pink).
pub const COLORS: [([f64; 3], f64); 6] = [
    ([0.94, 0.94, 0.93], 0.35),
    ([0.56, 0.74, 0.9], 0.3),
    ([0.09, 0.09, 0.1], 0.15),
    ([0.45, 0.68, 0.55], 0.08),
    ([0.6, 0.61, 0.63], 0.07),
    ([0.92, 0.7, 0.76], 0.05),
];

/// The printed textures and their probabilities.
const KINDS: [(Kind, f64); 3] = [(Kind::Surgical, 0.6), (Kind::Kn95, 0.2), (Kind::Cloth, 0.2)];

#[derive(Clone, Debug)]
pub struct RenderSynth {
    /// Colours with their probabilities (normalised when drawing).
    pub colors: Vec<([f64; 3], f64)>,
    /// Share of half masks (insightface's renderer's half option: the mask below the nose).
    pub half_share: f64,
}

impl Default for RenderSynth {
    fn default() -> Self {
        RenderSynth { colors: COLORS.to_vec(), half_share: 0.0 }
    }
}

/// An element drawn with probability proportional to its weight.
fn weighted<T: Copy>(r: &mut Stream, xs: &[(T, f64)]) -> T {
    let total: f64 = xs.iter().map(|x| x.1).sum();
    let mut pick = r.uniform() * total;
    for x in xs {
        if x.1 > 0.0 && pick < x.1 {
            return x.0;
        }
        pick -= x.1;
    }
    xs.iter().rev().find(|x| x.1 > 0.0).unwrap_or(&xs[0]).0
}

impl RenderSynth {
    /// Draws a commodity mask on `img`, a face with these landmarks; chosen by `seed`.
    pub fn apply(&self, img: &mut Rgb, landmarks: &[Point; 5], seed: u64) -> MaskInfo {
        let mut r = Stream::new(seed ^ 0x0DDB_A11C_0FFE_E000);
        let half = r.uniform() < self.half_share;
        let color = weighted(&mut r, &self.colors);
        let kind = weighted(&mut r, &KINDS);
        let width = 0.4 + 0.02 * (r.uniform() - 0.5);
        let outline = Outline {
            u0: 0.5 - width,
            u1: 0.5 + width,
            top: if half { 0.49 + 0.03 * r.uniform() } else { 0.33 + 0.07 * r.uniform() },
            sag: if half {
                0.02
            } else if kind == Kind::Kn95 {
                0.04 + 0.02 * r.uniform()
            } else {
                0.03 + 0.03 * r.uniform()
            },
            peaked: kind == Kind::Kn95 && !half,
            wrap: 0.05 + 0.07 * r.uniform(),
        };
        // Light from the front, above and to a side, in the camera frame (y down).
        let l = [0.9 * (r.uniform() - 0.5), -0.2 - 0.6 * r.uniform(), 1.0];
        let ambient = 0.25 + 0.2 * r.uniform();

        let cam = Camera::fit(&head::landmarks(), landmarks);
        let light = cam.head_dir(l);
        let view = cam.head_dir([0.0, 0.0, 1.0]);
        let unit = |a: [f64; 3]| {
            let n = (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt();
            a.map(|x| x / n)
        };
        let lighting = Lighting { light: unit(light), view, half: unit([0, 1, 2].map(|k| unit(light)[k] + view[k])) };
        let verts = raster::mesh(&outline, &cam, &lighting);
        let g = GBuffer::render(&verts, img.width, img.height);
        let dark = color.iter().sum::<f64>() < 0.9;
        // A black-and-white photo gets a grey mask (its light's colour the renderer leaves:
        // the shading already takes the photo's brightness).
        let photo = PhotoColour::of(img);
        let look = shade::Look {
            color: photo.desaturate(color),
            texture: textures::texture(kind),
            texels: [textures::W as f64, textures::H as f64],
            ambient,
            relief: if kind == Kind::Cloth { 0.15 } else { 0.25 },
            sheen: if dark { 0.12 } else { 0.05 },
            shadow: 0.3,
            shadow_px: 0.03 * cam.scale,
            eyes: [landmarks[0], landmarks[1]],
            eye_clear: (0.12 * (landmarks[1][0] - landmarks[0][0]).hypot(landmarks[1][1] - landmarks[0][1])).max(3.0),
        };
        shade::composite(img, &g, &outline, &look);
        // Surgical masks' loops are white elastic; others' match the fabric.
        let cord = if kind == Kind::Surgical { [0.93, 0.93, 0.92] } else { color };
        loops::draw(img, &outline, &cam, photo.desaturate(cord).map(|c| c * (ambient + 0.4)));
        MaskInfo {
            synthesizer: Synthesizer::Renderer,
            kind: if half { "half" } else { "full" },
            color: color.map(|x| (x * 255.0).round().clamp(0.0, 255.0) as u8),
            pattern: kind.name().into(),
        }
    }
}
