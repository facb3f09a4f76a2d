//! Data I/O bindings: RecordIO files and image codecs (maskfr-io).

use crate::js;
use maskfr_io::image_codec::{self, Dims, Rgb};
use maskfr_io::recordio::{pack, unpack, Header, RecordFile, RecordWriter};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::path::Path;
use std::sync::Arc;

/// One record: its IRHeader fields and the encoded image bytes.
#[napi(object)]
pub struct Record {
    pub flag: u32,
    pub label: f64,
    pub id: i64,
    pub id2: i64,
    /// The extra labels when `flag > 0` (InsightFace's image / identity ranges).
    pub labels: Vec<f64>,
    pub body: Buffer,
}

/// A `.rec` opened for random access (through its `.idx` when given).
#[napi]
pub struct RecordReader {
    file: Arc<RecordFile>,
}

#[napi]
impl RecordReader {
    #[napi(factory, catch_unwind)]
    pub fn open(rec: String, idx: Option<String>) -> Result<RecordReader> {
        let f = js(RecordFile::open(Path::new(&rec), idx.as_deref().map(Path::new)))?;
        Ok(RecordReader { file: Arc::new(f) })
    }

    /// Number of records.
    #[napi(getter)]
    pub fn length(&self) -> u32 {
        self.file.index().len() as u32
    }

    /// Every record key in file order.
    #[napi]
    pub fn keys(&self) -> Vec<i64> {
        self.file.index().iter().map(|(k, _)| *k as i64).collect()
    }

    #[napi(catch_unwind)]
    pub fn read(&self, key: i64) -> Result<Record> {
        let payload = js(self.file.read_key(key as u64))?;
        let (h, body) = js(unpack(&payload, &format!("{}: record {key}", self.file.path().display())))?;
        Ok(Record {
            flag: h.flag,
            label: h.label as f64,
            id: h.id as i64,
            id2: h.id2 as i64,
            labels: h.labels.iter().map(|&l| l as f64).collect(),
            body: body.to_vec().into(),
        })
    }
}

/// Writes `.rec` + `.idx` atomically (renamed into place by `finish()`).
#[napi]
pub struct RecordWriterHandle {
    inner: Option<RecordWriter>,
}

#[napi]
impl RecordWriterHandle {
    #[napi(factory, catch_unwind)]
    pub fn create(rec: String, idx: String) -> Result<RecordWriterHandle> {
        Ok(RecordWriterHandle { inner: Some(js(RecordWriter::create(Path::new(&rec), Path::new(&idx)))?) })
    }

    /// Appends a record: header fields (`labels` non-empty makes flag = labels.length) and body.
    #[napi(catch_unwind)]
    pub fn write(&mut self, key: i64, label: f64, id: i64, labels: Vec<f64>, body: Buffer) -> Result<()> {
        let w = self.inner.as_mut().ok_or_else(|| Error::new(Status::InvalidArg, "RecordWriter: already finished"))?;
        let h = if labels.is_empty() {
            Header::scalar(label as f32, id as u64)
        } else {
            Header::vector(labels.iter().map(|&l| l as f32).collect(), id as u64)
        };
        js(w.write(key as u64, &pack(&h, &body)))
    }

    #[napi(catch_unwind)]
    pub fn finish(&mut self) -> Result<()> {
        let w = self.inner.take().ok_or_else(|| Error::new(Status::InvalidArg, "RecordWriter: already finished"))?;
        js(w.finish())
    }
}

/// A decoded 8-bit RGB image, HWC.
#[napi(object)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub data: Buffer,
}

/// The largest side `decode_image` decodes.
#[napi]
pub const MAX_IMAGE_SIDE: u32 = image_codec::MAX_SIDE as u32;

/// Decodes JPEG or PNG bytes of at most [`image_codec::MAX_SIDE`] pixels a side (checked in
/// the header, before decoding); `what` names the source in errors.
#[napi(catch_unwind)]
pub fn decode_image(bytes: Buffer, what: String) -> Result<Image> {
    let img = js(image_codec::decode(&bytes, &what, Dims::AtMost(image_codec::MAX_SIDE)))?;
    Ok(Image { width: img.width as u32, height: img.height as u32, data: img.data.into() })
}

fn rgb(data: &Buffer, width: u32, height: u32) -> Rgb {
    Rgb { width: width as usize, height: height as usize, data: data.to_vec() }
}

#[napi(catch_unwind)]
pub fn encode_jpeg(data: Buffer, width: u32, height: u32, quality: u32) -> Result<Buffer> {
    Ok(js(image_codec::encode_jpeg(&rgb(&data, width, height), quality.min(100) as u8))?.into())
}

#[napi(catch_unwind)]
pub fn encode_png(data: Buffer, width: u32, height: u32) -> Result<Buffer> {
    Ok(js(image_codec::encode_png(&rgb(&data, width, height)))?.into())
}

/// Evaluation probes masked by a style of [`maskfr_masks::MaskPipeline::probes`]; image i
/// (counted from `first`) gets the mask seeded by (`seed`, i), whichever batch it is in.
#[napi(object)]
pub struct ProbeMasks {
    pub style: String,
    pub seed: i64,
    pub first: u32,
}

/// Encoded aligned faces decoded in parallel into one `[n, 3, size, size]` tensor,
/// normalised as the loader does, masked when `mask` says so, mirrored when `flip`; `what`
/// names the source in errors.
#[napi(catch_unwind)]
pub fn decode_faces(
    images: Vec<Buffer>,
    size: u32,
    flip: bool,
    what: String,
    mask: Option<ProbeMasks>,
) -> Result<crate::tensor::NativeTensor> {
    use maskfr_io::loader::Augment;
    use rayon::prelude::*;
    let masker = match &mask {
        None => None,
        Some(m) => Some(js(maskfr_masks::MaskPipeline::probes(&m.style))?),
    };
    let (size, per) = (size as usize, 3 * (size as usize).pow(2));
    let mut out = vec![0f32; images.len() * per];
    out.par_chunks_mut(per.max(1)).zip(images.par_iter()).enumerate().try_for_each(
        |(i, (dst, bytes))| -> Result<()> {
            let mut img = js(image_codec::decode(bytes, &format!("{what}: image {i}"), Dims::Square(size)))?;
            if let (Some(p), Some(m)) = (&masker, &mask) {
                p.apply(&mut img, maskfr_core::random::mix(m.seed as u64, (m.first as usize + i) as u64));
            }
            maskfr_io::loader::normalize(&img, flip, dst);
            Ok(())
        },
    )?;
    let t = js(maskfr_core::Tensor::from_vec(out, &[images.len(), 3, size, size]))?;
    Ok(crate::tensor::NativeTensor::wrap(t))
}
