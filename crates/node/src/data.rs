//! Data I/O bindings: RecordIO files and image codecs (maskfr-io).

use crate::js;
use maskfr_io::folder::FolderIndex;
use maskfr_io::image_codec::{self, Dims, Rgb};
use maskfr_io::loader::Source;
use maskfr_io::pack::{self as packing, Input, LandmarkSet, PackConfig, PackProgress, PackSummary};
use maskfr_io::recordio::{pack, unpack, Header, Layout, RecordFile, RecordWriter};
use napi::bindgen_prelude::*;
use napi::Task;
use napi_derive::napi;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One record: its IRHeader fields and the encoded image bytes.
#[napi(object)]
pub struct Record {
    pub flag: u32,
    pub label: f64,
    pub id: i64,
    pub id2: i64,
    /// The extra labels when `flag > 0` (InsightFace's image / identity ranges, or an image's
    /// identity and landmarks).
    pub labels: Vec<f64>,
    pub body: Buffer,
}

/// An image record: its identity, its five landmarks when it carries them (x1, y1, …, x5,
/// y5) and the encoded image.
#[napi(object)]
pub struct ImageRecord {
    pub label: f64,
    pub landmarks: Option<Vec<f64>>,
    pub body: Buffer,
}

/// A `.rec` opened for random access (through its `.idx` when given), with its InsightFace
/// layout read in Rust: a million image keys stay out of the JS heap.
#[napi]
pub struct RecordReader {
    pub(crate) file: Arc<RecordFile>,
    pub(crate) layout: Layout,
}

#[napi]
impl RecordReader {
    #[napi(factory, catch_unwind)]
    pub fn open(rec: String, idx: Option<String>) -> Result<RecordReader> {
        let file = js(RecordFile::open(Path::new(&rec), idx.as_deref().map(Path::new)))?;
        let layout = js(Layout::of(&file))?;
        Ok(RecordReader { file: Arc::new(file), layout })
    }

    /// Number of records.
    #[napi(getter)]
    pub fn length(&self) -> u32 {
        self.file.index().len() as u32
    }

    /// Number of image records.
    #[napi(getter)]
    pub fn images(&self) -> u32 {
        self.layout.images.len() as u32
    }

    /// Image `i`'s record key (file order), or null past the end.
    #[napi]
    pub fn image_key(&self, i: u32) -> Option<i64> {
        self.layout.images.get(i as usize).map(|&k| k as i64)
    }

    /// Each identity's `[start, end)` image keys, flat (`start0, end0, start1, …`), or null
    /// without InsightFace's header.
    #[napi]
    pub fn identity_ranges(&self) -> Option<Float64Array> {
        let ids = self.layout.identities.as_ref()?;
        Some(ids.iter().flat_map(|&(s, e)| [s as f64, e as f64]).collect::<Vec<_>>().into())
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

    /// Image record `key` read as the loader reads it: bad landmarks are an error naming it.
    #[napi(catch_unwind)]
    pub fn read_image(&self, key: i64) -> Result<ImageRecord> {
        let payload = js(self.file.read_key(key as u64))?;
        let what = format!("{}: record {key}", self.file.path().display());
        let (h, body) = js(unpack(&payload, &what))?;
        let landmarks = js(h.landmarks(&what))?.map(|l| l.iter().flatten().copied().collect());
        Ok(ImageRecord { label: h.identity() as f64, landmarks, body: body.to_vec().into() })
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

/// A sample of an image folder: its label and encoded bytes.
#[napi(object)]
pub struct FolderSample {
    pub label: u32,
    pub body: Buffer,
}

/// An image folder (one sub-folder per identity) scanned in Rust; its index stays there.
#[napi]
pub struct ImageFolder {
    pub(crate) index: Arc<FolderIndex>,
}

#[napi]
impl ImageFolder {
    #[napi(factory, catch_unwind)]
    pub fn scan(root: String) -> Result<ImageFolder> {
        Ok(ImageFolder { index: Arc::new(js(FolderIndex::scan(Path::new(&root)))?) })
    }

    /// Number of images.
    #[napi(getter)]
    pub fn length(&self) -> u32 {
        self.index.len() as u32
    }

    /// Number of identities (labels are 0 … identities − 1).
    #[napi(getter)]
    pub fn identities(&self) -> u32 {
        self.index.identities() as u32
    }

    fn check(&self, i: u32) -> Result<usize> {
        let n = self.index.len();
        if i as usize >= n {
            let root = self.index.root().display();
            return Err(Error::new(Status::InvalidArg, format!("{root}: image {i} is outside [0, {n})")));
        }
        Ok(i as usize)
    }

    /// Identity `label`'s folder name.
    #[napi(catch_unwind)]
    pub fn identity(&self, label: u32) -> Result<String> {
        if label >= self.identities() {
            let n = self.identities();
            return Err(Error::new(Status::InvalidArg, format!("identity {label} is outside [0, {n})")));
        }
        Ok(self.index.identity(label as usize).to_string_lossy().into_owned())
    }

    /// Image `i`'s path.
    #[napi(catch_unwind)]
    pub fn path(&self, i: u32) -> Result<String> {
        Ok(self.index.path(self.check(i)?).display().to_string())
    }

    /// Image `i`: its label and bytes (the file's size checked before it is read).
    #[napi(catch_unwind)]
    pub fn read(&self, i: u32) -> Result<FolderSample> {
        let s = js(self.index.read(self.check(i)?))?;
        Ok(FolderSample { label: s.label as u32, body: s.bytes.into() })
    }
}

#[napi(object)]
pub struct PackOptions {
    /// `folder`, `lst` or `rec`.
    pub kind: String,
    pub input: String,
    /// For a `.lst`: the folder its paths are relative to (absolute paths and `..` allowed).
    pub root: Option<String>,
    /// For a `.rec`: the labels to keep, one a line.
    pub identities: Option<String>,
    pub threads: u32,
    pub max_bad: f64,
    /// Five landmarks per image: the file they were read from (for messages), the images'
    /// paths relative to the input's root, and 10 numbers each (x1, y1, …, x5, y5).
    pub landmarks_file: Option<String>,
    pub landmark_names: Option<Vec<String>>,
    pub landmark_points: Option<Vec<f64>>,
    /// Store each image's 112×112 ArcFace crop, as JPEG of this quality.
    pub align_quality: Option<u32>,
    /// The crops' warp: `float` (OpenCV 5.x, the default) or `fixed` (OpenCV 4.x).
    pub align_warp: Option<String>,
}

#[napi(object)]
pub struct PackState {
    pub total: f64,
    pub done: f64,
    pub bad: f64,
}

#[napi(object)]
pub struct PackResult {
    pub images: f64,
    pub identities: f64,
    pub empty_identities: f64,
    pub bad: f64,
    pub bad_list: Option<String>,
}

/// A pack running on its own threads; `progress()` is polled, `finish()` awaited.
#[napi]
pub struct PackJob {
    progress: Arc<PackProgress>,
    thread: Arc<Mutex<Option<JoinHandle<maskfr_core::Result<PackSummary>>>>>,
}

#[napi]
impl PackJob {
    #[napi(factory, catch_unwind)]
    pub fn start(out: String, o: PackOptions) -> Result<PackJob> {
        let path = PathBuf::from(&o.input);
        let input = match o.kind.as_str() {
            "folder" => Input::Folder(path),
            "lst" => Input::List { lst: path, root: o.root.map(PathBuf::from) },
            "rec" => {
                let idx = path.with_extension("idx");
                let idx = idx.exists().then_some(idx);
                Input::Record { rec: path, idx, identities: o.identities.map(PathBuf::from) }
            }
            k => return Err(Error::new(Status::InvalidArg, format!("pack: unknown input kind '{k}'"))),
        };
        let landmarks = landmark_set(o.landmarks_file, o.landmark_names, o.landmark_points, "pack")?;
        let align_quality = o.align_quality.map(|q| q.min(100) as u8);
        let align_warp = js(maskfr_io::align::Warp::parse(o.align_warp.as_deref(), "pack: --warp"))?;
        let cfg = PackConfig { threads: o.threads as usize, max_bad: o.max_bad, landmarks, align_quality, align_warp };
        let progress = Arc::new(PackProgress::default());
        let p = progress.clone();
        let thread = std::thread::spawn(move || packing::pack(&input, Path::new(&out), &cfg, &p));
        Ok(PackJob { progress, thread: Arc::new(Mutex::new(Some(thread))) })
    }

    #[napi]
    pub fn progress(&self) -> PackState {
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
        PackState { total: get(&self.progress.total), done: get(&self.progress.done), bad: get(&self.progress.bad) }
    }

    /// Waits for the pack off the JS thread.
    #[napi(ts_return_type = "Promise<PackResult>")]
    pub fn finish(&self) -> AsyncTask<PackWait> {
        AsyncTask::new(PackWait { thread: self.thread.clone() })
    }
}

pub struct PackWait {
    thread: Arc<Mutex<Option<JoinHandle<maskfr_core::Result<PackSummary>>>>>,
}

impl Task for PackWait {
    type Output = PackSummary;
    type JsValue = PackResult;

    fn compute(&mut self) -> Result<PackSummary> {
        let t = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        let t = t.ok_or_else(|| Error::new(Status::InvalidArg, "pack: finish() already called"))?;
        js(t.join().unwrap_or_else(|_| Err(maskfr_core::Error("pack: a thread panicked".into()))))
    }

    fn resolve(&mut self, _env: Env, s: PackSummary) -> Result<PackResult> {
        Ok(PackResult {
            images: s.images as f64,
            identities: s.identities as f64,
            empty_identities: s.empty_identities as f64,
            bad: s.bad as f64,
            bad_list: s.bad_list.map(|p| p.display().to_string()),
        })
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

/// Landmarks read by the TS side (`readLandmarks`) as their file, the image names and 10
/// numbers per name: all three or none. `what` names the command in the error.
pub(crate) fn landmark_set(
    file: Option<String>,
    names: Option<Vec<String>>,
    points: Option<Vec<f64>>,
    what: &str,
) -> Result<Option<LandmarkSet>> {
    match (file, names, points) {
        (Some(file), Some(names), Some(v)) if v.len() == 10 * names.len() => Ok(Some(LandmarkSet {
            file: file.into(),
            points: names
                .into_iter()
                .zip(v.chunks_exact(10))
                .map(|(n, p)| (PathBuf::from(n), [0, 1, 2, 3, 4].map(|i| [p[2 * i], p[2 * i + 1]])))
                .collect(),
        })),
        (None, None, None) => Ok(None),
        (file, names, points) => {
            let msg = format!(
                "{what}: landmarks need their file, the image names and 10 numbers for each; got file {}, {} names, {} numbers",
                file.as_deref().unwrap_or("none"),
                names.map_or(0, |n| n.len()),
                points.map_or(0, |p| p.len())
            );
            Err(Error::new(Status::InvalidArg, msg))
        }
    }
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
    Ok(decode(&images, size, flip, &what, mask.as_ref())?.0)
}

/// Faces decoded as [`decode_faces`] does, every one masked, and what each got: its
/// synthesizer's name (`template`, `renderer`; empty when the pipeline left it unmasked) and
/// its mask kind (`surgical`, …, `full`, `half`; empty likewise). Two string arrays per
/// batch, not an object per face.
#[napi(object, object_from_js = false)]
pub struct MaskedFaces {
    pub faces: crate::tensor::NativeTensor,
    pub synthesizers: Vec<String>,
    pub kinds: Vec<String>,
}

#[napi(catch_unwind)]
pub fn decode_masked_faces(
    images: Vec<Buffer>,
    size: u32,
    flip: bool,
    what: String,
    mask: ProbeMasks,
) -> Result<MaskedFaces> {
    let (faces, drawn) = decode(&images, size, flip, &what, Some(&mask))?;
    let names = |f: fn(&maskfr_masks::MaskInfo) -> &str| {
        drawn.iter().map(|d| d.as_ref().map_or(String::new(), |m| f(m).to_string())).collect()
    };
    Ok(MaskedFaces { faces, synthesizers: names(|m| m.synthesizer.name()), kinds: names(|m| m.kind) })
}

type Drawn = Vec<Option<maskfr_masks::MaskInfo>>;

fn decode(
    images: &[Buffer],
    size: u32,
    flip: bool,
    what: &str,
    mask: Option<&ProbeMasks>,
) -> Result<(crate::tensor::NativeTensor, Drawn)> {
    use rayon::prelude::*;
    let masker = match mask {
        None => None,
        Some(m) => Some(js(maskfr_masks::MaskPipeline::probes(&m.style))?),
    };
    let (size, per) = (size as usize, 3 * (size as usize).pow(2));
    let mut out = vec![0f32; images.len() * per];
    let drawn = out
        .par_chunks_mut(per.max(1))
        .zip(images.par_iter())
        .enumerate()
        .map(|(i, (dst, bytes))| -> Result<Option<maskfr_masks::MaskInfo>> {
            let mut img = js(image_codec::decode(bytes, &format!("{what}: image {i}"), Dims::Square(size)))?;
            let info = match (&masker, mask) {
                (Some(p), Some(m)) => {
                    p.mask(&mut img, None, maskfr_core::random::mix(m.seed as u64, (m.first as usize + i) as u64))
                }
                _ => None,
            };
            maskfr_io::loader::normalize(&img, flip, dst);
            Ok(info)
        })
        .collect::<Result<Drawn>>()?;
    let t = js(maskfr_core::Tensor::from_vec(out, &[images.len(), 3, size, size]))?;
    Ok((crate::tensor::NativeTensor::wrap(t), drawn))
}
