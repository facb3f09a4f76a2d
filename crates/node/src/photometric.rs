//! Photometric augmentation bindings (maskfr-io's photometric): the loader's options, their
//! defaults, and one image jittered for previews. An option left out takes its default, op by
//! op and field by field, so `{ blur: { probability: 0.2 } }` keeps the default sigmas.

use maskfr_io::image_codec::Rgb;
use maskfr_io::photometric::{Blur, Erasing, Fill, Jitter, Jpeg, Photometric};
use napi::bindgen_prelude::*;
use napi_derive::napi;

#[napi(object)]
pub struct JitterOptions {
    pub probability: Option<f64>,
    /// `[min, max]` factors (torchvision ColorJitter's tuple form).
    pub range: Option<Vec<f64>>,
}

#[napi(object)]
pub struct BlurOptions {
    pub probability: Option<f64>,
    /// `[min, max]` sigmas in pixels; the kernel's radius is ⌈3σ⌉.
    pub sigma: Option<Vec<f64>>,
}

#[napi(object)]
pub struct JpegOptions {
    pub probability: Option<f64>,
    /// `[min, max]` JPEG qualities (integers in 1–100).
    pub quality: Option<Vec<f64>>,
}

#[napi(object)]
pub struct ErasingOptions {
    pub probability: Option<f64>,
    /// `[min, max]` shares of the image's area.
    pub scale: Option<Vec<f64>>,
    /// `[min, max]` aspect ratios (height / width), drawn log-uniformly.
    pub ratio: Option<Vec<f64>>,
    /// `'random'` (per-pixel noise) or an `[r, g, b]` colour.
    #[napi(ts_type = "'random' | number[]")]
    pub fill: Option<Either<String, Vec<f64>>>,
}

#[napi(object)]
pub struct PhotometricOptions {
    pub brightness: Option<JitterOptions>,
    pub contrast: Option<JitterOptions>,
    pub saturation: Option<JitterOptions>,
    pub blur: Option<BlurOptions>,
    pub jpeg: Option<JpegOptions>,
    pub erasing: Option<ErasingOptions>,
}

fn invalid(msg: String) -> Error {
    Error::new(Status::InvalidArg, msg)
}

/// `[min, max]` from a JS array named `name` (in errors), or `default`.
fn pair(v: Option<Vec<f64>>, name: &str, default: [f64; 2]) -> Result<[f64; 2]> {
    match v {
        None => Ok(default),
        Some(v) => <[f64; 2]>::try_from(v.as_slice())
            .map_err(|_| invalid(format!("photometric.{name} must be [min, max], got {} numbers", v.len()))),
    }
}

fn jitter(o: Option<JitterOptions>, name: &str, d: Jitter) -> Result<Jitter> {
    let Some(o) = o else { return Ok(d) };
    Ok(Jitter {
        probability: o.probability.unwrap_or(d.probability),
        range: pair(o.range, &format!("{name}.range"), d.range)?,
    })
}

fn integers<const N: usize>(v: [f64; N], name: &str, max: f64) -> Result<[u32; N]> {
    if v.iter().all(|x| x.fract() == 0.0 && (0.0..=max).contains(x)) {
        return Ok(v.map(|x| x as u32));
    }
    Err(invalid(format!("photometric.{name} must hold integers in [0, {max}], got {v:?}")))
}

/// The options over the defaults, checked (the first wrong field named).
pub fn photometric(o: PhotometricOptions) -> Result<Photometric> {
    let d = Photometric::default();
    let blur = match o.blur {
        None => d.blur,
        Some(b) => Blur {
            probability: b.probability.unwrap_or(d.blur.probability),
            sigma: pair(b.sigma, "blur.sigma", d.blur.sigma)?,
        },
    };
    let jpeg = match o.jpeg {
        None => d.jpeg,
        Some(j) => {
            let q = pair(j.quality, "jpeg.quality", d.jpeg.quality.map(f64::from))?;
            Jpeg {
                probability: j.probability.unwrap_or(d.jpeg.probability),
                quality: integers(q, "jpeg.quality", 100.0)?,
            }
        }
    };
    let erasing = match o.erasing {
        None => d.erasing,
        Some(e) => Erasing {
            probability: e.probability.unwrap_or(d.erasing.probability),
            scale: pair(e.scale, "erasing.scale", d.erasing.scale)?,
            ratio: pair(e.ratio, "erasing.ratio", d.erasing.ratio)?,
            fill: match e.fill {
                None => d.erasing.fill,
                Some(Either::A(s)) if s == "random" => Fill::Random,
                Some(Either::A(s)) => {
                    return Err(invalid(format!("photometric.erasing.fill must be 'random' or [r, g, b], got '{s}'")))
                }
                Some(Either::B(v)) => match <[f64; 3]>::try_from(v.as_slice()) {
                    Ok(c) => Fill::Constant(integers(c, "erasing.fill", 255.0)?.map(|x| x as u8)),
                    Err(_) => {
                        return Err(invalid(format!(
                            "photometric.erasing.fill must be 'random' or [r, g, b], got {} numbers",
                            v.len()
                        )))
                    }
                },
            },
        },
    };
    let p = Photometric {
        brightness: jitter(o.brightness, "brightness", d.brightness)?,
        contrast: jitter(o.contrast, "contrast", d.contrast)?,
        saturation: jitter(o.saturation, "saturation", d.saturation)?,
        blur,
        jpeg,
        erasing,
    };
    p.validate().map_err(|e| invalid(e.0))?;
    Ok(p)
}

/// The defaults, every field set (insightface's recipe; see maskfr-io's photometric).
#[napi]
pub fn photometric_defaults() -> PhotometricOptions {
    let d = Photometric::default();
    let j = |j: Jitter| Some(JitterOptions { probability: Some(j.probability), range: Some(j.range.to_vec()) });
    PhotometricOptions {
        brightness: j(d.brightness),
        contrast: j(d.contrast),
        saturation: j(d.saturation),
        blur: Some(BlurOptions { probability: Some(d.blur.probability), sigma: Some(d.blur.sigma.to_vec()) }),
        jpeg: Some(JpegOptions {
            probability: Some(d.jpeg.probability),
            quality: Some(d.jpeg.quality.map(f64::from).to_vec()),
        }),
        erasing: Some(ErasingOptions {
            probability: Some(d.erasing.probability),
            scale: Some(d.erasing.scale.to_vec()),
            ratio: Some(d.erasing.ratio.to_vec()),
            fill: Some(match d.erasing.fill {
                Fill::Random => Either::A("random".into()),
                Fill::Constant(c) => Either::B(c.map(f64::from).to_vec()),
            }),
        }),
    }
}

/// `photometric(options)` checked, without touching an image: null when fine, else the
/// first wrong field (for the training config's checks).
#[napi(catch_unwind)]
pub fn photometric_problem(options: PhotometricOptions) -> Option<String> {
    photometric(options).err().map(|e| e.reason)
}

/// A copy of the RGB image (HWC) after the photometric ops drawn from `seed`.
#[napi(catch_unwind)]
pub fn photometric_augment(
    data: Buffer,
    width: u32,
    height: u32,
    seed: i64,
    options: Option<PhotometricOptions>,
) -> Result<Buffer> {
    if data.len() != (width as usize) * (height as usize) * 3 {
        return Err(invalid(format!("photometric: {} bytes for a {width}x{height} RGB image", data.len())));
    }
    let p = match options {
        Some(o) => photometric(o)?,
        None => Photometric::default(),
    };
    let mut img = Rgb { width: width as usize, height: height as usize, data: data.to_vec() };
    crate::js(p.apply(&mut img, seed as u64))?;
    Ok(img.data.into())
}
