//! The training loader binding: batches built by Rust worker threads, handed to JS as
//! native tensors by an async task (the JS thread never decodes or waits on pixels).

use crate::data::{ImageFolder, RecordReader};
use crate::js;
use crate::photometric::{photometric, PhotometricOptions};
use crate::tensor::NativeTensor;
use maskfr_core::Tensor;
use maskfr_io::loader::{self, Augment, Epoch, LoaderConfig, RecordSource, Source};
use maskfr_io::photometric::WithPhotometric;
use maskfr_masks::MaskPipeline;
use napi::bindgen_prelude::*;
use napi::Task;
use napi_derive::napi;
use std::sync::{Arc, Mutex};

#[napi(object)]
pub struct LoaderOptions {
    pub batch: u32,
    pub seed: i64,
    pub rank: u32,
    pub world: u32,
    pub shuffle: bool,
    pub flip: bool,
    pub size: u32,
    pub prefetch: u32,
    pub threads: u32,
    pub skip_corrupt: bool,
    /// With `skip_corrupt`: the share of this rank's samples in an epoch that may be skipped.
    pub max_corrupt_share: f64,
    /// Share of samples given a synthesized mask in the workers (0 or absent: none).
    pub mask_probability: Option<f64>,
    /// Share of the masked samples drawn by the template synthesizer, the rest rendered
    /// (default [`MaskPipeline::DEFAULT_TEMPLATE_SHARE`]).
    pub mask_template_share: Option<f64>,
    /// Weights of the renderer's commodity colours: white, blue, black, green, grey, pink.
    pub mask_color_weights: Option<Vec<f64>>,
    /// Photometric augmentation after the masks (absent: none); fields left out take their
    /// defaults.
    pub photometric: Option<PhotometricOptions>,
}

#[napi(object, object_from_js = false)]
pub struct LoadedBatch {
    /// `[n, 3, size, size]`, normalised `(x/255 − 0.5)/0.5`.
    pub images: NativeTensor,
    pub labels: Int32Array,
    /// Each sample's index in the dataset.
    pub indices: Uint32Array,
    /// Which samples were masked by the augmentation.
    pub masked: Vec<bool>,
    /// `[n, 10]` landmarks (x1, y1, …, x5, y5) as each image lies (mirrored with it), NaN
    /// for a sample without; null when no sample of the batch has any.
    pub landmarks: Option<Float64Array>,
    /// What was skipped as corrupt while building this batch (with `skipCorrupt`), each
    /// sample once per epoch.
    pub skipped: Vec<String>,
}

#[napi]
pub struct DataLoader {
    source: Arc<dyn Source>,
    cfg: LoaderConfig,
    aug: Option<Arc<dyn Augment>>,
    epoch: Arc<Mutex<Option<Epoch>>>,
}

/// The workers' hook: the mask synthesizers (if any), then the photometric ops (if any).
fn augment(o: &mut LoaderOptions) -> Result<Option<Arc<dyn Augment>>> {
    let masks: Option<Arc<dyn Augment>> = match o.mask_probability.filter(|&p| p > 0.0) {
        None => None,
        Some(p) => {
            let pipeline = MaskPipeline::new(
                p,
                o.mask_template_share.unwrap_or(MaskPipeline::DEFAULT_TEMPLATE_SHARE),
                o.mask_color_weights.as_deref(),
            );
            Some(Arc::new(js(pipeline)?))
        }
    };
    js(WithPhotometric::hook(masks, o.photometric.take().map(photometric).transpose()?))
}

fn config(o: &LoaderOptions) -> LoaderConfig {
    LoaderConfig {
        batch: o.batch as usize,
        seed: o.seed as u64,
        rank: o.rank as usize,
        world: o.world as usize,
        shuffle: o.shuffle,
        flip: o.flip,
        size: o.size as usize,
        prefetch: o.prefetch as usize,
        threads: o.threads as usize,
        skip_corrupt: o.skip_corrupt,
        max_corrupt_share: o.max_corrupt_share,
    }
}

#[napi]
impl DataLoader {
    /// The image records of an opened `.rec`.
    #[napi(factory, catch_unwind)]
    pub fn from_record(reader: &RecordReader, options: LoaderOptions) -> Result<DataLoader> {
        let source = Arc::new(RecordSource { file: reader.file.clone(), keys: reader.layout.images.clone() });
        DataLoader::new(source, options)
    }

    /// The images of a scanned folder.
    #[napi(factory, catch_unwind)]
    pub fn from_folder(folder: &ImageFolder, options: LoaderOptions) -> Result<DataLoader> {
        DataLoader::new(folder.index.clone(), options)
    }

    fn new(source: Arc<dyn Source>, mut o: LoaderOptions) -> Result<DataLoader> {
        let aug = augment(&mut o)?;
        Ok(DataLoader { source, cfg: config(&o), aug, epoch: Arc::new(Mutex::new(None)) })
    }

    /// Starts building epoch `epoch` from batch `first` (0: the start) in the background;
    /// returns the epoch's number of batches.
    #[napi(catch_unwind)]
    pub fn start_epoch(&self, epoch: u32, first: Option<u32>) -> Result<u32> {
        let e = js(loader::epoch(
            self.source.clone(),
            self.aug.clone(),
            &self.cfg,
            epoch as u64,
            first.unwrap_or(0) as usize,
        ))?;
        let n = e.batches() as u32;
        *self.epoch.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        Ok(n)
    }

    /// Batches in every epoch of this rank.
    #[napi(catch_unwind)]
    pub fn batches_per_epoch(&self) -> u32 {
        (loader::shard(self.source.len(), &self.cfg, 0).len() / self.cfg.batch.max(1)) as u32
    }

    /// The next batch of the current epoch, or null at its end.
    #[napi(ts_return_type = "Promise<LoadedBatch | null>")]
    pub fn next(&self) -> AsyncTask<NextBatch> {
        AsyncTask::new(NextBatch { epoch: self.epoch.clone(), size: self.cfg.size })
    }
}

pub struct NextBatch {
    epoch: Arc<Mutex<Option<Epoch>>>,
    size: usize,
}

impl Task for NextBatch {
    type Output = Option<loader::Batch>;
    type JsValue = Option<LoadedBatch>;

    fn compute(&mut self) -> Result<Self::Output> {
        let mut guard = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
        let Some(e) = guard.as_mut() else {
            return Err(Error::new(Status::InvalidArg, "loader: call startEpoch() before next()"));
        };
        js(e.next().transpose())
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        let Some(b) = output else { return Ok(None) };
        let n = b.labels.len();
        let landmarks = b.landmarks.iter().any(Option::is_some).then(|| {
            let flat =
                b.landmarks.iter().flat_map(|l| l.map_or([f64::NAN; 10], |l| l.as_flattened().try_into().unwrap()));
            Float64Array::new(flat.collect())
        });
        let images = js(Tensor::from_vec(b.images, &[n, 3, self.size, self.size]))?;
        Ok(Some(LoadedBatch {
            images: NativeTensor::wrap(images),
            labels: Int32Array::new(b.labels),
            indices: Uint32Array::new(b.indices),
            masked: b.masked,
            landmarks,
            skipped: b.skipped.into_iter().map(|s| s.why).collect(),
        }))
    }
}
