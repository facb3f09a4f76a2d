//! JPEG/PNG decoding to RGB and JPEG/PNG encoding. JPEGs decode through libjpeg-turbo (built
//! from source by `turbojpeg`) with its defaults — ISLOW IDCT, fancy upsampling — so the pixels
//! equal OpenCV's and PIL's to the bit, as the evaluation code we compare with sees them, and
//! encode through it as PIL does; PNG goes through the `image` crate. The dimensions are read
//! from the header and checked before any pixel is decoded: a small file declaring 13000²
//! pixels (a decompression bomb) is refused without allocating them.

use crate::{err, Result};
use image::{DynamicImage, ImageDecoder, ImageReader};
use std::io::Cursor;
use turbojpeg::{Colorspace, Compressor, Decompressor, Image, PixelFormat, Subsamp};

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
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        return decode_jpeg(bytes, what, dims);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| crate::Error(format!("{what}: cannot read the image ({e})")))?;
    if reader.format() != Some(image::ImageFormat::Png) {
        return err(format!("{what}: {} bytes that are neither JPEG nor PNG", bytes.len()));
    }
    let corrupt = |e: image::ImageError| crate::Error(format!("{what}: corrupt image ({e})"));
    let decoder = reader.into_decoder().map_err(corrupt)?;
    let (w, h) = decoder.dimensions();
    let (w, h) = (w as usize, h as usize);
    check_dims(w, h, dims, what)?;
    let img = DynamicImage::from_decoder(decoder).map_err(corrupt)?.into_rgb8();
    Ok(Rgb { width: w, height: h, data: img.into_raw() })
}

fn check_dims(w: usize, h: usize, dims: Dims, what: &str) -> Result<()> {
    match dims {
        Dims::Square(s) if (w, h) != (s, s) => err(format!("{what}: {w}x{h} image, expected {s}x{s} aligned faces")),
        Dims::AtMost(m) if w > m || h > m => {
            err(format!("{what}: the header declares {w}x{h} pixels, more than the {m}x{m} decoded at most"))
        }
        _ => Ok(()),
    }
}

/// The most scans a progressive JPEG may have (TurboJPEG's own TJFLAG_LIMITSCANS figure; encoders
/// write about ten): each scan is a pass over the whole image, so a small file of thousands of
/// them would take minutes to decode.
const MAX_SCANS: u32 = 500;

/// libjpeg-turbo's TurboJPEG API reports every error (and warning: a truncated or damaged
/// stream) as a return code, so no C longjmp crosses Rust frames; a warning refuses the image
/// rather than handing back partly grey pixels.
fn decode_jpeg(bytes: &[u8], what: &str, dims: Dims) -> Result<Rgb> {
    let corrupt = |e: turbojpeg::Error| crate::Error(format!("{what}: corrupt image ({e})"));
    let mut tj =
        Decompressor::new().map_err(|e| crate::Error(format!("{what}: cannot start the JPEG decoder ({e})")))?;
    tj.set_scan_limit(MAX_SCANS).map_err(corrupt)?;
    let header = tj.read_header(bytes).map_err(corrupt)?;
    if matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK) {
        return err(format!("{what}: a CMYK JPEG, not decoded: convert it to RGB"));
    }
    if let Some(bits) = sof_precision(bytes).filter(|&b| b != 8) {
        return err(format!("{what}: a {bits}-bit JPEG, not decoded: only 8-bit JPEGs are"));
    }
    let (w, h) = (header.width, header.height);
    check_dims(w, h, dims, what)?;
    let mut data = vec![0u8; w * h * 3];
    let out = Image { pixels: &mut data[..], width: w, pitch: w * 3, height: h, format: PixelFormat::RGB };
    tj.decompress(bytes, out).map_err(corrupt)?;
    Ok(Rgb { width: w, height: h, data })
}

/// The sample precision in the JPEG's frame header (SOFn), found by walking the marker
/// segments; TurboJPEG reads it but the `turbojpeg` crate does not expose it, and a 12-bit
/// JPEG must be named as such rather than as corrupt.
fn sof_precision(bytes: &[u8]) -> Option<u8> {
    let mut i = 2;
    while i + 4 < bytes.len() {
        if bytes[i] != 0xff {
            return None;
        }
        let marker = bytes[i + 1];
        if marker == 0xff {
            i += 1; // fill byte
            continue;
        }
        if matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
            return Some(bytes[i + 4]);
        }
        i += 2 + u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
    }
    None
}

/// Encodes RGB pixels as a baseline 4:2:0 JPEG of `quality` (1–100) by libjpeg-turbo with
/// PIL's `save(format='JPEG', quality=q)` settings: decoded, the same pixels as PIL's file.
pub fn encode_jpeg(img: &Rgb, quality: u8) -> Result<Vec<u8>> {
    if img.data.len() != img.width * img.height * 3 {
        return err(format!("encode_jpeg: {} bytes for a {}x{} RGB image", img.data.len(), img.width, img.height));
    }
    let fail =
        |e: turbojpeg::Error| crate::Error(format!("encode_jpeg: libjpeg-turbo failed at quality {quality} ({e})"));
    let mut c = Compressor::new().map_err(fail)?;
    c.set_quality(i32::from(quality.clamp(1, 100))).map_err(fail)?;
    c.set_subsamp(Subsamp::Sub2x2).map_err(fail)?;
    let pixels = Image {
        pixels: &img.data[..],
        width: img.width,
        pitch: img.width * 3,
        height: img.height,
        format: PixelFormat::RGB,
    };
    c.compress_to_vec(pixels).map_err(fail)
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
