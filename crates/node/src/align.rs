//! Face alignment bindings (maskfr-io's `align`): insightface's `norm_crop` from five landmarks.

use crate::js;
use maskfr_io::align::{self, Point};
use maskfr_io::image_codec::Rgb;
use napi::bindgen_prelude::*;
use napi_derive::napi;

fn five(v: &[f64], what: &str) -> Result<[Point; 5]> {
    if v.len() != 10 {
        let msg = format!("{what}: landmarks need 10 numbers (5 x,y points), got {}", v.len());
        return Err(Error::new(Status::InvalidArg, msg));
    }
    Ok([0, 1, 2, 3, 4].map(|i| [v[2 * i], v[2 * i + 1]]))
}

/// The `size`×`size` ArcFace crop (RGB, HWC) of an RGB image for its five landmarks
/// (x1, y1, …, x5, y5: eyes, nose tip, mouth corners); `what` names the image in errors.
/// `warp`: `float` (OpenCV 5.x's pixels, the default) or `fixed` (OpenCV 4.x's).
#[napi(catch_unwind)]
pub fn align_face(
    data: Buffer,
    width: u32,
    height: u32,
    landmarks: Vec<f64>,
    size: u32,
    what: String,
    warp: Option<String>,
) -> Result<Buffer> {
    let warp = js(align::Warp::parse(warp.as_deref(), &what))?;
    if data.len() != width as usize * height as usize * 3 {
        let msg = format!("{what}: {} bytes for a {width}x{height} RGB image", data.len());
        return Err(Error::new(Status::InvalidArg, msg));
    }
    let img = Rgb { width: width as usize, height: height as usize, data: data.to_vec() };
    Ok(js(align::norm_crop(&img, &five(&landmarks, &what)?, size as usize, warp, &what))?.data.into())
}

/// The similarity `[a, b, c, d, e, f]` (image → crop) that `align_face` warps by: skimage's
/// `SimilarityTransform.estimate` from the landmarks to the template for `size`; landmarks
/// it would refuse are refused here too, `what` naming them.
#[napi(catch_unwind)]
pub fn align_transform(landmarks: Vec<f64>, size: u32, what: String) -> Result<Vec<f64>> {
    let pts = five(&landmarks, &what)?;
    js(align::check_landmarks(&pts, &what))?;
    Ok(js(align::norm_transform(&pts, size as usize))?.to_vec())
}
