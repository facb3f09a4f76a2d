//! The masking pipeline run inside the loader's workers: each sample is masked with a
//! probability, by a synthesizer chosen per sample, all from the sample's seed.

use crate::choices::MaskInfo;
use crate::geometry::{Point, ARCFACE_112};
use crate::renderer::RenderSynth;
use crate::template::TemplateSynth;
use maskfr_core::random::Stream;
use maskfr_core::{Error, Result};
use maskfr_io::image_codec::Rgb;
use maskfr_io::loader::Augment;

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

/// The ArcFace landmarks scaled to an aligned `size × size` face.
fn aligned_landmarks(size: usize) -> [Point; 5] {
    let s = size as f64 / 112.0;
    ARCFACE_112.map(|p| [p[0] * s, p[1] * s])
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
