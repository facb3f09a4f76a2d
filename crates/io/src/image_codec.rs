//! JPEG/PNG decoding to RGB and JPEG encoding, through the `image` crate (zune-jpeg inside).
//! The dimensions are read from the header and checked before any pixel is decoded: a small
//! file declaring 13000² pixels (a decompression bomb) is refused without allocating them.

use crate::{err, Result};
use image::{codecs::jpeg::JpegEncoder, DynamicImage, ImageDecoder, ImageReader};
use std::io::Cursor;

/// The largest side decoded where no exact size is expected (inspect's contact sheets,
/// `decodeImage`): 4096² RGB is 48 MiB.
pub const MAX_SIDE: usize = 4096;

/// The largest image file read whole (the image-folder loader, `maskfr pack`): a MAX_SIDE²
/// RGB image stored uncompressed is 48 MiB; what is larger is not a face (or a picture) to
/// train on, and is refused before it is read.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (HWC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// The dimensions a caller accepts, checked against the image's header before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dims {
    /// Exactly `side × side` (aligned faces).
    Square(usize),
    /// Neither side above this.
    AtMost(usize),
}

/// Decodes JPEG or PNG bytes (format sniffed from the content) whose header's dimensions
/// `dims` accepts; `what` names the source in errors.
pub fn decode(bytes: &[u8], what: &str, dims: Dims) -> Result<Rgb> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| crate::Error(format!("{what}: cannot read the image ({e})")))?;
    if reader.format().is_none() {
        return err(format!("{what}: {} bytes that are neither JPEG nor PNG", bytes.len()));
    }
    let corrupt = |e: image::ImageError| crate::Error(format!("{what}: corrupt image ({e})"));
    let decoder = reader.into_decoder().map_err(corrupt)?;
    let (w, h) = decoder.dimensions();
    let (w, h) = (w as usize, h as usize);
    match dims {
        Dims::Square(s) if (w, h) != (s, s) => {
            return err(format!("{what}: {w}x{h} image, expected {s}x{s} aligned faces"));
        }
        Dims::AtMost(m) if w > m || h > m => {
            return err(format!("{what}: the header declares {w}x{h} pixels, more than the {m}x{m} decoded at most"));
        }
        _ => {}
    }
    let img = DynamicImage::from_decoder(decoder).map_err(corrupt)?.into_rgb8();
    Ok(Rgb { width: w, height: h, data: img.into_raw() })
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
