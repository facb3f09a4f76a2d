//! Mask synthesis bindings (maskfr-masks).

use maskfr_io::image_codec::Rgb;
use maskfr_masks::{MaskPipeline, Point, RenderSynth, TemplateSynth, ARCFACE_112};
use napi::bindgen_prelude::*;
use napi_derive::napi;

fn five(values: Option<Vec<f64>>) -> Result<[Point; 5]> {
    match values {
        None => Ok(ARCFACE_112),
        Some(v) if v.len() == 10 => Ok([0, 1, 2, 3, 4].map(|i| [v[2 * i], v[2 * i + 1]])),
        Some(v) => Err(Error::new(
            Status::InvalidArg,
            format!("masks: landmarks need 10 numbers (5 x,y pairs), got {}", v.len()),
        )),
    }
}

fn image(data: &Buffer, width: u32, height: u32) -> Result<Rgb> {
    if data.len() != (width * height * 3) as usize {
        let msg = format!("masks: {} bytes for a {width}x{height} RGB image", data.len());
        return Err(Error::new(Status::InvalidArg, msg));
    }
    Ok(Rgb { width: width as usize, height: height as usize, data: data.to_vec() })
}

/// A copy of the RGB image (HWC) with a template mask drawn on it: the mask is chosen by
/// `seed`; landmarks default to the ArcFace 112×112 template (aligned faces).
#[napi(catch_unwind)]
pub fn template_mask(data: Buffer, width: u32, height: u32, seed: i64, landmarks: Option<Vec<f64>>) -> Result<Buffer> {
    let mut img = image(&data, width, height)?;
    TemplateSynth::default().apply(&mut img, &five(landmarks)?, seed as u64);
    Ok(img.data.into())
}

/// A copy of the RGB image with a rendered commodity mask (head-surface model, shading).
#[napi(catch_unwind)]
pub fn render_mask(data: Buffer, width: u32, height: u32, seed: i64, landmarks: Option<Vec<f64>>) -> Result<Buffer> {
    let mut img = image(&data, width, height)?;
    RenderSynth::default().apply(&mut img, &five(landmarks)?, seed as u64);
    Ok(img.data.into())
}

#[napi(object)]
pub struct MaskDefaults {
    pub mask_probability: f64,
    pub mask_template_share: f64,
}

/// The seed team's training mix of the two synthesizers (maskfr-masks holds the numbers).
#[napi]
pub fn mask_defaults() -> MaskDefaults {
    MaskDefaults {
        mask_probability: MaskPipeline::DEFAULT_PROBABILITY,
        mask_template_share: MaskPipeline::DEFAULT_TEMPLATE_SHARE,
    }
}
