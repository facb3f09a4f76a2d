//! The template synthesizer: masks of five kinds (surgical, N95, KN95, cloth, half-face
//! respirator) drawn procedurally in a 100×80 template space around six key points and warped
//! onto the face by the homography that takes the template's key points to the face's. Each
//! kind has its real features (pleats, cup, folds, seams, valves, cartridges) and its ear
//! loops or straps; the mask is shaded as lying on the lower face (turned with the head),
//! printed with a pattern or a user texture over a fabric grain, anti-aliased, with a faint
//! shadow on the skin along its edge, and as bright as the image's lower face.

mod gas;
mod light;
mod material;
mod shapes;
mod soften;
mod straps;

pub use material::Grain;
pub use shapes::{MaskShape, SHAPES};

use crate::choices::{MaskInfo, Synthesizer, Texture};
use crate::geometry::{face_keypoints, Homography, Point};
use crate::texture::{Fabric, Pattern, PATTERNS};
use light::{bounds, Light, Pose};
use maskfr_core::random::Stream;
use maskfr_core::{Error, Result};
use maskfr_io::image_codec::Rgb;
use material::Material;
use shapes::Detail;
use std::f64::consts::{PI, TAU};
use std::sync::Arc;

/// Template key points, in the order of [`crate::geometry::face_keypoints`].
pub const TEMPLATE_KEYPOINTS: [Point; 6] =
    [[4.0, 26.0], [96.0, 26.0], [50.0, 6.0], [9.0, 56.0], [91.0, 56.0], [50.0, 80.0]];

/// Everything about one mask besides its shape and fabric, drawn from the seed.
#[derive(Clone, Copy, Debug)]
pub struct Look {
    /// The light's direction (x, y; y < 0 from above) before the image's own side light.
    pub light: [f64; 2],
    pub ambient: f64,
    /// Colours (0–1) of the plastic parts (cartridges, the N95's valve), of the gas mask's
    /// valve cover, and of the ear loops or straps.
    pub parts: [f64; 3],
    pub dark: [f64; 3],
    pub strap: [f64; 3],
    pub grain: Grain,
    /// N95: with an exhalation valve.
    pub valve: bool,
    /// Cloth: three soft folds (wave vector u, v, phase, amplitude).
    pub folds: [[f64; 4]; 3],
    /// User textures: template units one tile spans across, and the tile's offset (texture
    /// pixels).
    pub tile: f64,
    pub tile_offset: [f64; 2],
    /// Seed of the grain and pixel noise.
    pub seed: u64,
}

/// One sample's mask: shape, fabric and its two colours (RGB in [0, 1]), the user texture
/// printed instead of the fabric's pattern (if any), and the rest of its look.
#[derive(Clone, Debug)]
pub struct Choice {
    pub shape: MaskShape,
    pub fabric: Fabric,
    pub colors: [[f64; 3]; 2],
    pub texture: Option<Arc<Texture>>,
    pub look: Look,
}

const PALETTE: [[f64; 3]; 12] = [
    [0.95, 0.95, 0.95],
    [0.55, 0.75, 0.92],
    [0.08, 0.08, 0.09],
    [0.55, 0.56, 0.58],
    [0.12, 0.16, 0.35],
    [0.93, 0.6, 0.7],
    [0.35, 0.6, 0.4],
    [0.75, 0.15, 0.15],
    [0.85, 0.78, 0.62],
    [0.45, 0.25, 0.6],
    [0.95, 0.85, 0.3],
    [0.3, 0.75, 0.75],
];

/// Respirator rubber (grey, black, blue-grey, purple-grey) and filter colours (magenta P100,
/// olive, yellow, black, grey, pink), for gas masks when no colours are asked for.
const RUBBER: [[f64; 3]; 4] = [[0.42, 0.43, 0.45], [0.1, 0.1, 0.11], [0.3, 0.36, 0.45], [0.38, 0.33, 0.42]];
const FILTERS: [[f64; 3]; 6] = [
    [0.78, 0.25, 0.55],
    [0.42, 0.45, 0.28],
    [0.9, 0.78, 0.25],
    [0.12, 0.12, 0.13],
    [0.55, 0.56, 0.58],
    [0.9, 0.6, 0.7],
];
/// Plastics of an N95's valve; ear loops and straps (white, black, yellow, blue elastic).
const VALVES: [[f64; 3]; 4] = [[0.92, 0.92, 0.9], [0.6, 0.62, 0.64], [0.12, 0.12, 0.13], [0.3, 0.45, 0.7]];
const STRAPS: [[f64; 3]; 4] = [[0.93, 0.93, 0.92], [0.12, 0.12, 0.13], [0.88, 0.78, 0.45], [0.45, 0.6, 0.82]];

/// The default synthesizer's choice for `seed` (every shape, colour and pattern).
pub fn choose(seed: u64) -> Choice {
    TemplateSynth::default().choose(seed)
}

/// Draws the mask `c` onto `img` (a face with these five landmarks).
pub fn draw(img: &mut Rgb, landmarks: &[Point; 5], c: &Choice) {
    let kp = face_keypoints(landmarks);
    let h = Homography::fit(&TEMPLATE_KEYPOINTS, &kp);
    let inv = h.inverse();
    let pose = Pose::new(landmarks, &h, &inv);
    // The mask is lit as the face: as bright, from the brighter side, in the photo's colours.
    let scene = light::scene(img, &kp);
    let blur = soften::weight(soften::sharpness(img));
    let bright = (scene.lum / 0.5).clamp(0.45, 1.25).powf(0.6);
    let lit =
        Light::new([(c.look.light[0] + 1.5 * scene.side).clamp(-0.8, 0.8), c.look.light[1]], c.look.ambient, pose.yaw);
    straps::draw(img, c.shape, scene.photo.tint(c.look.strap), bright, blur, &h, &pose);
    let detail = Detail { upp: pose.upp, valve: c.look.valve, folds: c.look.folds };
    let material = Material::new(c, pose.upp);
    // The faint shadow the mask's edge casts on the skin reaches this far (template units).
    let shadow = 2.0 * pose.upp;
    let corners = [[-8.0, -6.0], [108.0, -6.0], [-8.0, 90.0], [108.0, 90.0]].map(|p| h.apply(p));
    let (x0, x1) = bounds(corners.iter().map(|p| p[0]), img.width);
    let (y0, y1) = bounds(corners.iter().map(|p| p[1]), img.height);
    let mut drawn = vec![false; (x1 - x0) * (y1 - y0)];
    for y in y0..y1 {
        for x in x0..x1 {
            let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
            let [u, v] = inv.apply([px, py]);
            if !(-8.0..=108.0).contains(&u) || !(-6.0..=90.0).contains(&v) || !pose.clear_of_eyes(px, py) {
                continue;
            }
            let u = pose.follow(u, v);
            let s = c.shape.surface(u, v, &detail);
            if s.sd <= -shadow {
                continue;
            }
            let alpha = (s.sd / pose.upp + 0.5).clamp(0.0, 1.0);
            let under = if s.sd < 0.0 { 1.0 - 0.3 * (1.0 + s.sd / shadow).powi(2) } else { 1.0 };
            drawn[(y - y0) * (x1 - x0) + x - x0] = true;
            let out = &mut img.data[(y * img.width + x) * 3..][..3];
            if alpha <= 0.0 {
                out.iter_mut().for_each(|p| *p = (*p as f64 * under + 0.5) as u8);
                continue;
            }
            let (diffuse, spec) = lit.shade((u - 50.0) / 50.0, v, s.gx, s.gy, s.base);
            // The cut edge catches less light than the face of the fabric.
            let rim = 1.0 - 0.15 * shapes::bump(s.sd / (0.8 * pose.upp));
            let albedo = scene.photo.tint(material.albedo(s.part, u, v));
            let noise = material.pixel_noise(x, y, scene.photo.colour);
            let shade = diffuse * s.ao * rim;
            for k in 0..3 {
                let col = (albedo[k] * shade + 0.45 * s.gloss * spec) * noise[k] * bright;
                let bg = out[k] as f64 * under;
                out[k] = (bg + (255.0 * col.clamp(0.0, 1.0) - bg) * alpha + 0.5) as u8;
            }
        }
    }
    soften::soften(img, [x0, x1, y0, y1], &drawn, blur);
}

/// The template synthesizer: a random mask per seed, drawn from these choices (MaskTheFace's
/// CLI choices: kinds, colours, patterns, user textures). The default draws from everything.
#[derive(Clone, Debug, Default)]
pub struct TemplateSynth {
    /// Shapes drawn from (None: all of [`SHAPES`]).
    pub shapes: Option<Vec<MaskShape>>,
    /// Colours drawn from, for the fabric and (the second) the plastic parts (None: the
    /// built-in palettes, rubber and filter colours for gas masks).
    pub colors: Option<Vec<[f64; 3]>>,
    /// Fabric patterns drawn from (None: all of [`PATTERNS`], mostly plain).
    pub patterns: Option<Vec<Pattern>>,
    /// User textures (`--textures DIR`); when given, every mask prints one of them.
    pub textures: Vec<Arc<Texture>>,
}

impl TemplateSynth {
    /// Errors on a choice that leaves nothing to draw or a colour outside [0, 1] (NaN too),
    /// naming it. (`choose` draws from everything where a list is empty.)
    pub fn check(&self) -> Result<()> {
        let empty = |name: &str| Err(Error(format!("template masks: the list of {name} is empty")));
        if self.shapes.as_ref().is_some_and(|s| s.is_empty()) {
            return empty("shapes");
        }
        if self.patterns.as_ref().is_some_and(|s| s.is_empty()) {
            return empty("patterns");
        }
        match &self.colors {
            Some(c) if c.is_empty() => empty("colours"),
            Some(c) => match c.iter().find(|c| !c.iter().all(|x| (0.0..=1.0).contains(x))) {
                Some(bad) => Err(Error(format!("template masks: colour {bad:?} has a channel outside [0, 1]"))),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// The mask for `seed`: shape, colours and pattern from the allowed ones, a user texture
    /// when there are any, and its look.
    pub fn choose(&self, seed: u64) -> Choice {
        let mut r = Stream::new(seed);
        let shape = match &self.shapes {
            Some(s) if !s.is_empty() => r.pick(s),
            _ => r.pick(&SHAPES),
        };
        let gas = shape == MaskShape::Gas;
        let pattern = match &self.patterns {
            Some(p) if !p.is_empty() => r.pick(p),
            // Most masks are plain; a respirator's rubber nearly always.
            _ if r.uniform() < if gas { 0.85 } else { 0.35 } => Pattern::Solid,
            _ => r.pick(&PATTERNS),
        };
        let fabric =
            Fabric { pattern, period: 4.0 + 10.0 * r.uniform(), angle: r.uniform() * PI, seed: seed.rotate_left(17) };
        let colors = match &self.colors {
            Some(c) if !c.is_empty() => [r.pick(c), r.pick(c)],
            _ => {
                let tint = |c: [f64; 3], r: &mut Stream| c.map(|x| (x * (0.85 + 0.3 * r.uniform())).min(1.0));
                let first = if gas { r.pick(&RUBBER) } else { r.pick(&PALETTE) };
                [tint(first, &mut r), tint(r.pick(&PALETTE), &mut r)]
            }
        };
        let n = self.textures.len();
        let texture = (n > 0).then(|| self.textures[((r.uniform() * n as f64) as usize).min(n - 1)].clone());
        let parts = match shape {
            _ if self.colors.as_ref().is_some_and(|c| !c.is_empty()) => colors[1],
            MaskShape::Gas => r.pick(&FILTERS),
            _ => r.pick(&VALVES),
        };
        let strap = match shape {
            MaskShape::Gas => [0.1, 0.1, 0.11].map(|x| x + 0.25 * r.uniform()),
            MaskShape::Cloth if r.uniform() < 0.6 => colors[0],
            MaskShape::Surgical | MaskShape::Kn95 if r.uniform() < 0.3 => colors[0],
            _ => r.pick(&STRAPS),
        };
        let grain = match shape {
            MaskShape::Gas => Grain::Rubber,
            MaskShape::Cloth if r.uniform() < 0.4 => Grain::Knit,
            MaskShape::Cloth => Grain::Woven,
            _ => Grain::Nonwoven,
        };
        let mut wave = || {
            let (a, k) = (r.uniform() * PI, TAU / (26.0 + 20.0 * r.uniform()));
            [k * a.cos(), k * a.sin(), r.uniform() * TAU, 0.8 + 1.4 * r.uniform()]
        };
        let folds = [wave(), wave(), wave()];
        let look = Look {
            light: [0.6 * (r.uniform() - 0.5), -0.25 - 0.45 * r.uniform()],
            ambient: 0.22 + 0.13 * r.uniform(),
            parts,
            dark: [0.1, 0.1, 0.11].map(|x| x + 0.15 * r.uniform()),
            strap,
            grain,
            valve: shape == MaskShape::N95 && r.uniform() < 0.4,
            folds,
            tile: 35.0 + 35.0 * r.uniform(),
            tile_offset: [r.uniform() * 1e3, r.uniform() * 1e3],
            seed: seed.rotate_left(29) ^ 0x6a09_e667_f3bc_c908,
        };
        Choice { shape, fabric, colors, texture, look }
    }

    /// Draws the mask chosen by `seed`; returns what it drew.
    pub fn apply(&self, img: &mut Rgb, landmarks: &[Point; 5], seed: u64) -> MaskInfo {
        let c = self.choose(seed);
        draw(img, landmarks, &c);
        let (color, pattern) = match &c.texture {
            Some(t) => (t.mean_color(), format!("texture:{}", t.name)),
            None => (c.colors[0], c.fabric.pattern.name().to_string()),
        };
        MaskInfo {
            synthesizer: Synthesizer::Template,
            kind: c.shape.name(),
            color: color.map(|x| (x * 255.0).round().clamp(0.0, 255.0) as u8),
            pattern,
        }
    }
}
