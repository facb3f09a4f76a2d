//! JPEG/PNG decoding to RGB and JPEG encoding, through the `image` crate (zune-jpeg inside).

use crate::{err, Result};
use image::{codecs::jpeg::JpegEncoder, ImageReader};
use std::io::Cursor;

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (HWC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// Decodes JPEG or PNG bytes (format sniffed from the content); `what` names the source in errors.
pub fn decode(bytes: &[u8], what: &str) -> Result<Rgb> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| crate::Error(format!("{what}: cannot read the image ({e})")))?;
    if reader.format().is_none() {
        return err(format!("{what}: {} bytes that are neither JPEG nor PNG", bytes.len()));
    }
    let img = reader.decode().map_err(|e| crate::Error(format!("{what}: corrupt image ({e})")))?.into_rgb8();
    Ok(Rgb { width: img.width() as usize, height: img.height() as usize, data: img.into_raw() })
}

/// Encodes RGB pixels as a baseline JPEG of `quality` (1–100).
pub fn encode_jpeg(img: &Rgb, quality: u8) -> Result<Vec<u8>> {
    if img.data.len() != img.width * img.height * 3 {
        return err(format!("encode_jpeg: {} bytes for a {}x{} RGB image", img.data.len(), img.width, img.height));
    }
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
        .encode(&img.data, img.width as u32, img.height as u32, image::ExtendedColorType::Rgb8)
        .map_err(|e| crate::Error(format!("encode_jpeg: {e}")))?;
    Ok(out)
}

/// Encodes RGB pixels as PNG (contact sheets, previews).
pub fn encode_png(img: &Rgb) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let buf = image::RgbImage::from_raw(img.width as u32, img.height as u32, img.data.clone()).ok_or_else(|| {
        crate::Error(format!("encode_png: {} bytes for a {}x{} RGB image", img.data.len(), img.width, img.height))
    })?;
    buf.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| crate::Error(format!("encode_png: {e}")))?;
    Ok(out)
}
