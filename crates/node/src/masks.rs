//! Mask synthesis bindings (maskfr-masks).

use maskfr_io::image_codec::Rgb;
use maskfr_masks::{Point, TemplateSynth, ARCFACE_112};
use napi::bindgen_prelude::*;
use napi_derive::napi;

fn landmarks(values: Option<Vec<f64>>) -> Result<[Point; 5]> {
    match values {
        None => Ok(ARCFACE_112),
        Some(v) if v.len() == 10 => Ok([0, 1, 2, 3, 4].map(|i| [v[2 * i], v[2 * i + 1]])),
        Some(v) => Err(Error::new(
            Status::InvalidArg,
            format!("masks: landmarks need 10 numbers (5 x,y pairs), got {}", v.len()),
        )),
    }
}

/// A copy of the RGB image (HWC) with a template mask drawn on it: the mask is chosen by
/// `seed`; landmarks default to the ArcFace 112×112 template (aligned faces).
#[napi(catch_unwind)]
pub fn template_mask(
    data: Buffer,
    width: u32,
    height: u32,
    seed: i64,
    landmarks_xy: Option<Vec<f64>>,
) -> Result<Buffer> {
    if data.len() != (width * height * 3) as usize {
        return Err(Error::new(
            Status::InvalidArg,
            format!("masks: {} bytes for a {width}x{height} RGB image", data.len()),
        ));
    }
    let mut img = Rgb { width: width as usize, height: height as usize, data: data.to_vec() };
    TemplateSynth.apply(&mut img, &landmarks(landmarks_xy)?, seed as u64);
    Ok(img.data.into())
}
