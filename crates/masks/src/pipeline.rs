//! The masking pipeline run inside the loader's workers and by `maskfr mask`: each sample is
//! masked with a probability, by a synthesizer chosen per sample, all from the sample's seed;
//! [`MaskChoices`] restricts what is drawn by name (MaskTheFace's CLI choices: kinds, colours,
//! patterns, textures).

use crate::choices::MaskInfo;
use crate::geometry::{Point, ARCFACE_112};
use crate::renderer::RenderSynth;
use crate::template::{TemplateSynth, SHAPES};
use crate::texture::PATTERNS;
use maskfr_core::random::Stream;
use maskfr_core::{Error, Result};
use maskfr_io::image_codec::Rgb;
use maskfr_io::loader::Augment;
use std::path::PathBuf;
use std::sync::Arc;

pub struct MaskPipeline {
    /// Share of samples masked.
    pub probability: f64,
    /// Share of the masked samples drawn by the template synthesizer; the rest are rendered.
    pub template_share: f64,
    pub template: TemplateSynth,
    pub renderer: RenderSynth,
}

impl MaskPipeline {
    /// The seed team's training mix: 35% of samples masked, half of them by templates. The
    /// one home of these defaults: the binding hands them to TypeScript (`MASK_DEFAULTS`).
    pub const DEFAULT_PROBABILITY: f64 = 0.35;
    pub const DEFAULT_TEMPLATE_SHARE: f64 = 0.5;

    /// `color_weights`, when given, reweights the renderer's commodity colours (in the
    /// order of [`crate::renderer::COLORS`]: white, blue, black, green, grey, pink).
    pub fn new(probability: f64, template_share: f64, color_weights: Option<&[f64]>) -> Result<MaskPipeline> {
        for (name, v) in [("probability", probability), ("template share", template_share)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error(format!("masks: {name} must be in [0, 1], got {v}")));
            }
        }
        let mut renderer = RenderSynth::default();
        if let Some(w) = color_weights {
            if w.len() != renderer.colors.len()
                || w.iter().any(|x| x.is_nan() || *x < 0.0)
                || w.iter().sum::<f64>() <= 0.0
            {
                return Err(Error(format!(
                    "masks: colour weights must be {} non-negative numbers (white, blue, black, green, grey, pink) with a positive sum, got {w:?}",
                    renderer.colors.len()
                )));
            }
            renderer.colors.iter_mut().zip(w).for_each(|(c, &x)| c.1 = x);
        }
        Ok(MaskPipeline { probability, template_share, template: TemplateSynth::default(), renderer })
    }
}

/// Commodity colours the renderer never draws in training (red, yellow): the held-out style.
pub const HELD_OUT_COLORS: [([f64; 3], f64); 2] = [([0.78, 0.12, 0.12], 1.0), ([0.93, 0.8, 0.2], 1.0)];

impl MaskPipeline {
    /// Every probe masked, for evaluation: `mixed` (the default training mix of the two
    /// synthesizers), `template`, `renderer`, or `held-out` (rendered in colours training
    /// never draws).
    pub fn probes(style: &str) -> Result<MaskPipeline> {
        match style {
            "mixed" => MaskPipeline::new(1.0, Self::DEFAULT_TEMPLATE_SHARE, None),
            "template" => MaskPipeline::new(1.0, 1.0, None),
            "renderer" => MaskPipeline::new(1.0, 0.0, None),
            "held-out" => Ok(MaskPipeline {
                probability: 1.0,
                template_share: 0.0,
                template: TemplateSynth::default(),
                renderer: RenderSynth { colors: HELD_OUT_COLORS.to_vec(), ..RenderSynth::default() },
            }),
            _ => Err(Error(format!("masks: style '{style}', expected mixed, template, renderer or held-out"))),
        }
    }
}

/// The ArcFace landmarks scaled to an aligned `size × size` face, as a record's header would
/// store them (f32): a face without landmarks is masked exactly as one whose record carries
/// the template's.
fn aligned_landmarks(size: usize) -> [Point; 5] {
    let s = size as f64 / 112.0;
    ARCFACE_112.map(|p| [(p[0] * s) as f32 as f64, (p[1] * s) as f32 as f64])
}

impl MaskPipeline {
    /// Masks `img` with this pipeline's probability, on the face's own landmarks or on the
    /// aligned template's without them; returns what was drawn (None: left unmasked).
    pub fn mask(&self, img: &mut Rgb, landmarks: Option<&[Point; 5]>, seed: u64) -> Option<MaskInfo> {
        let mut r = Stream::new(seed ^ 0xA5A5_5A5A_0F0F_F0F0);
        if r.uniform() >= self.probability {
            return None;
        }
        let landmarks = landmarks.copied().unwrap_or_else(|| aligned_landmarks(img.width));
        Some(if r.uniform() < self.template_share {
            self.template.apply(img, &landmarks, seed)
        } else {
            self.renderer.apply(img, &landmarks, seed)
        })
    }
}

impl Augment for MaskPipeline {
    fn apply(&self, img: &mut Rgb, landmarks: Option<&[Point; 5]>, seed: u64) -> bool {
        self.mask(img, landmarks, seed).is_some()
    }
}

/// Which synthesizers draw the masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synthesizers {
    Template,
    Renderer,
    /// Both, the template's share of the masked samples given by `template_share`.
    Both,
}

impl Synthesizers {
    pub fn parse(name: &str) -> Result<Synthesizers> {
        match name {
            "template" => Ok(Synthesizers::Template),
            "renderer" => Ok(Synthesizers::Renderer),
            "both" => Ok(Synthesizers::Both),
            _ => Err(Error(format!("masks: unknown synthesizer '{name}' (valid: template, renderer, both)"))),
        }
    }
}

/// The renderer's mask kinds: the whole lower face, or below the nose only.
pub const RENDERER_KINDS: [&str; 2] = ["full", "half"];

/// Colour names accepted besides `#rrggbb`: the renderer's commodity colours, then the rest
/// of the template's palette.
pub const NAMED_COLORS: [(&str, [f64; 3]); 12] = [
    ("white", [0.94, 0.94, 0.93]),
    ("blue", [0.56, 0.74, 0.9]),
    ("black", [0.09, 0.09, 0.1]),
    ("green", [0.45, 0.68, 0.55]),
    ("grey", [0.6, 0.61, 0.63]),
    ("pink", [0.92, 0.7, 0.76]),
    ("navy", [0.12, 0.16, 0.35]),
    ("red", [0.75, 0.15, 0.15]),
    ("beige", [0.85, 0.78, 0.62]),
    ("purple", [0.45, 0.25, 0.6]),
    ("yellow", [0.95, 0.85, 0.3]),
    ("teal", [0.3, 0.75, 0.75]),
];

/// What a pipeline may draw, by name, as a user gives it (`maskfr mask`'s options); empty
/// lists leave that choice to the synthesizers' defaults.
#[derive(Clone, Debug)]
pub struct MaskChoices {
    pub probability: f64,
    /// The template's share of the masked samples with [`Synthesizers::Both`].
    pub template_share: f64,
    pub synthesizers: Synthesizers,
    /// Template shapes (surgical, n95, kn95, cloth, gas) and renderer kinds (full, half).
    pub kinds: Vec<String>,
    /// Names of [`NAMED_COLORS`] or `#rrggbb`.
    pub colors: Vec<String>,
    /// The template's fabric patterns (solid, stripes, …).
    pub patterns: Vec<String>,
    /// A folder of fabric photos the template prints (MaskTheFace's pattern images).
    pub textures: Option<PathBuf>,
}

impl Default for MaskChoices {
    fn default() -> Self {
        MaskChoices {
            probability: 1.0,
            template_share: MaskPipeline::DEFAULT_TEMPLATE_SHARE,
            synthesizers: Synthesizers::Both,
            kinds: vec![],
            colors: vec![],
            patterns: vec![],
            textures: None,
        }
    }
}

/// `white`, `#3366cc`: an RGB colour in [0, 1].
pub fn parse_color(s: &str) -> Result<[f64; 3]> {
    if let Some((_, c)) = NAMED_COLORS.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
        return Ok(*c);
    }
    let hex = s.strip_prefix('#').filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    match hex {
        Some(h) => Ok([0, 2, 4].map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap_or(0) as f64 / 255.0)),
        None => {
            let names: Vec<&str> = NAMED_COLORS.iter().map(|c| c.0).collect();
            Err(Error(format!("masks: unknown colour '{s}' (valid: {}, or #rrggbb)", names.join(", "))))
        }
    }
}

fn unknown(what: &str, name: &str, valid: &[String]) -> Error {
    Error(format!("masks: unknown {what} '{name}' (valid: {})", valid.join(", ")))
}

impl MaskPipeline {
    /// The pipeline drawing only what `c` names; every name checked, an error listing the
    /// valid ones otherwise. A synthesizer in use must be left a kind to draw, and a choice
    /// only the unused synthesizer makes (`--patterns` with the renderer alone) is refused.
    pub fn from_choices(c: &MaskChoices) -> Result<MaskPipeline> {
        let share = match c.synthesizers {
            Synthesizers::Template => 1.0,
            Synthesizers::Renderer => 0.0,
            Synthesizers::Both => c.template_share,
        };
        let mut p = MaskPipeline::new(c.probability, c.template_share, None)?;
        p.template_share = share;
        let (uses_template, uses_renderer) = (share > 0.0, share < 1.0);
        let shape_names: Vec<String> = SHAPES.iter().map(|s| s.name().to_string()).collect();
        let all_kinds: Vec<String> = shape_names.iter().cloned().chain(RENDERER_KINDS.map(String::from)).collect();
        if let Some(k) = c.kinds.iter().find(|k| !all_kinds.contains(k)) {
            return Err(unknown("kind", k, &all_kinds));
        }
        if !c.kinds.is_empty() {
            let shapes: Vec<_> = SHAPES.iter().copied().filter(|s| c.kinds.iter().any(|k| k == s.name())).collect();
            let (full, half) = (c.kinds.iter().any(|k| k == "full"), c.kinds.iter().any(|k| k == "half"));
            let renderer_kinds = usize::from(full) + usize::from(half);
            if uses_template && shapes.is_empty() {
                return Err(Error(format!(
                    "masks: the template synthesizer is in use but --kinds names none of its kinds ({}); add one, or use --synthesizer renderer",
                    shape_names.join(", ")
                )));
            }
            if uses_renderer && renderer_kinds == 0 {
                return Err(Error(
                    "masks: the renderer is in use but --kinds names none of its kinds (full, half); add one, or use --synthesizer template".into(),
                ));
            }
            if !uses_template && !shapes.is_empty() || !uses_renderer && renderer_kinds > 0 {
                return Err(Error(format!(
                    "masks: --kinds {} names a kind of a synthesizer not in use (template: {}; renderer: full, half)",
                    c.kinds.join(","),
                    shape_names.join(", ")
                )));
            }
            p.template.shapes = Some(shapes);
            p.renderer.half_share = if half { 1.0 / renderer_kinds as f64 } else { 0.0 };
        }
        if !c.colors.is_empty() {
            let colors = c.colors.iter().map(|s| parse_color(s)).collect::<Result<Vec<_>>>()?;
            p.template.colors = Some(colors.clone());
            p.renderer.colors = colors.into_iter().map(|c| (c, 1.0)).collect();
        }
        if !uses_template && (!c.patterns.is_empty() || c.textures.is_some()) {
            return Err(Error(
                "masks: patterns and textures are the template synthesizer's, which is not in use".into(),
            ));
        }
        if !c.patterns.is_empty() {
            let names: Vec<String> = PATTERNS.iter().map(|p| p.name().to_string()).collect();
            let picked = c
                .patterns
                .iter()
                .map(|n| PATTERNS.iter().copied().find(|p| p.name() == n).ok_or_else(|| unknown("pattern", n, &names)))
                .collect::<Result<Vec<_>>>()?;
            p.template.patterns = Some(picked);
        }
        if let Some(dir) = &c.textures {
            p.template.textures = crate::choices::Texture::load_dir(dir)?.into_iter().map(Arc::new).collect();
        }
        Ok(p)
    }
}
