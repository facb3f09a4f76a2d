//! Mask synthesis bindings (maskfr-masks): the synthesizers on one image, with the user's
//! choices, and `maskfr mask`'s engine as a job polled for progress.

use crate::js;
use maskfr_io::image_codec::Rgb;
use maskfr_io::pack::PackProgress;
use maskfr_masks::offline::{mask_dataset, OfflineConfig, OfflineSummary};
use maskfr_masks::{MaskChoices, MaskPipeline, Point, RenderSynth, Synthesizers, TemplateSynth, ARCFACE_112};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

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

/// What masks may be drawn, by name (all optional: the synthesizers' defaults).
#[napi(object)]
pub struct MaskChoiceOptions {
    /// `template`, `renderer` or `both`.
    pub synthesizer: Option<String>,
    pub probability: Option<f64>,
    pub template_share: Option<f64>,
    /// surgical, n95, kn95, cloth, gas (template); full, half (renderer).
    pub kinds: Option<Vec<String>>,
    /// Colour names or `#rrggbb`.
    pub colors: Option<Vec<String>>,
    pub patterns: Option<Vec<String>>,
    /// A folder of fabric images the template prints.
    pub textures: Option<String>,
}

fn to_choices(o: MaskChoiceOptions, probability: f64) -> Result<MaskChoices> {
    let d = MaskChoices::default();
    Ok(MaskChoices {
        probability: o.probability.unwrap_or(probability),
        template_share: o.template_share.unwrap_or(d.template_share),
        synthesizers: match o.synthesizer {
            Some(s) => js(Synthesizers::parse(&s))?,
            None => d.synthesizers,
        },
        kinds: o.kinds.unwrap_or_default(),
        colors: o.colors.unwrap_or_default(),
        patterns: o.patterns.unwrap_or_default(),
        textures: o.textures.map(PathBuf::from),
    })
}

/// A masked face and what was drawn on it.
#[napi(object)]
pub struct DrawnFace {
    pub data: Buffer,
    pub synthesizer: String,
    pub kind: String,
    /// `#rrggbb`.
    pub color: String,
    pub pattern: String,
}

/// A copy of the RGB image wearing a mask drawn from `choices` (always drawn: the probability
/// is 1) by `seed`; landmarks default to the ArcFace 112×112 template.
#[napi(catch_unwind)]
pub fn draw_mask(
    data: Buffer,
    width: u32,
    height: u32,
    seed: i64,
    landmarks: Option<Vec<f64>>,
    choices: MaskChoiceOptions,
) -> Result<DrawnFace> {
    let mut img = image(&data, width, height)?;
    let c = to_choices(choices, 1.0)?;
    let p = js(MaskPipeline::from_choices(&MaskChoices { probability: 1.0, ..c }))?;
    let lm = five(landmarks)?;
    let info = p.mask(&mut img, Some(&lm), seed as u64).expect("a pipeline of probability 1 always masks");
    let [r, g, b] = info.color;
    Ok(DrawnFace {
        data: img.data.into(),
        synthesizer: info.synthesizer.name().into(),
        kind: info.kind.into(),
        color: format!("#{r:02x}{g:02x}{b:02x}"),
        pattern: info.pattern,
    })
}

#[napi(object)]
pub struct MaskJobOptions {
    pub choices: MaskChoiceOptions,
    pub seed: i64,
    pub threads: u32,
    pub quality: u32,
    pub max_bad: f64,
    pub overwrite: bool,
    /// A folder's images' five landmarks: the file they were read from (for messages), the
    /// images' paths relative to the folder, and 10 numbers each (x1, y1, …, x5, y5).
    pub landmarks_file: Option<String>,
    pub landmark_names: Option<Vec<String>>,
    pub landmark_points: Option<Vec<f64>>,
}

#[napi(object)]
pub struct MaskCount {
    pub synthesizer: String,
    pub kind: String,
    pub count: f64,
}

#[napi(object)]
pub struct MaskResult {
    /// `folder`, `rec` or `bin`.
    pub kind: String,
    pub images: f64,
    pub masked: f64,
    pub bad: f64,
    pub copied: f64,
    pub by_mask: Vec<MaskCount>,
    pub sidecar: String,
    pub bad_list: Option<String>,
}

type Running = Arc<Mutex<Option<JoinHandle<maskfr_core::Result<OfflineSummary>>>>>;

/// `maskfr mask IN OUT` running on its own threads; `progress()` is polled, `finish()` awaited.
#[napi]
pub struct MaskJob {
    progress: Arc<PackProgress>,
    thread: Running,
}

#[napi]
impl MaskJob {
    #[napi(factory, catch_unwind)]
    pub fn start(input: String, out: String, o: MaskJobOptions) -> Result<MaskJob> {
        if o.seed < 0 {
            return Err(Error::new(Status::InvalidArg, format!("mask: the seed must be ≥ 0, got {}", o.seed)));
        }
        let cfg = OfflineConfig {
            choices: to_choices(o.choices, 1.0)?,
            seed: o.seed as u64,
            threads: o.threads.max(1) as usize,
            quality: o.quality.min(255) as u8,
            max_bad: o.max_bad,
            overwrite: o.overwrite,
            landmarks: crate::data::landmark_set(o.landmarks_file, o.landmark_names, o.landmark_points, "mask")?,
        };
        let progress = Arc::new(PackProgress::default());
        let p = progress.clone();
        let thread = std::thread::spawn(move || mask_dataset(Path::new(&input), Path::new(&out), &cfg, &p));
        Ok(MaskJob { progress, thread: Arc::new(Mutex::new(Some(thread))) })
    }

    #[napi]
    pub fn progress(&self) -> crate::data::PackState {
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
        crate::data::PackState {
            total: get(&self.progress.total),
            done: get(&self.progress.done),
            bad: get(&self.progress.bad),
        }
    }

    /// Waits for the run off the JS thread.
    #[napi(ts_return_type = "Promise<MaskResult>")]
    pub fn finish(&self) -> AsyncTask<MaskWait> {
        AsyncTask::new(MaskWait { thread: self.thread.clone() })
    }
}

pub struct MaskWait {
    thread: Running,
}

impl Task for MaskWait {
    type Output = OfflineSummary;
    type JsValue = MaskResult;

    fn compute(&mut self) -> Result<OfflineSummary> {
        let t = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        let t = t.ok_or_else(|| Error::new(Status::InvalidArg, "mask: finish() already called"))?;
        js(t.join().unwrap_or_else(|_| Err(maskfr_core::Error("mask: a thread panicked".into()))))
    }

    fn resolve(&mut self, _env: Env, s: OfflineSummary) -> Result<MaskResult> {
        use maskfr_masks::offline::Kind;
        let kind = match s.kind {
            Kind::Folder => "folder",
            Kind::Record => "rec",
            Kind::Bin => "bin",
        };
        Ok(MaskResult {
            kind: kind.into(),
            images: s.images as f64,
            masked: s.masked as f64,
            bad: s.bad as f64,
            copied: s.copied as f64,
            by_mask: s
                .by_mask
                .into_iter()
                .map(|(synthesizer, kind, n)| MaskCount { synthesizer, kind, count: n as f64 })
                .collect(),
            sidecar: s.sidecar.display().to_string(),
            bad_list: s.bad_list.map(|p| p.display().to_string()),
        })
    }
}

#[napi(object)]
pub struct MaskChoiceNames {
    pub kinds: Vec<String>,
    pub colors: Vec<String>,
    pub patterns: Vec<String>,
}

/// The names `MaskChoiceOptions` accepts (maskfr-masks holds them), for help texts.
#[napi]
pub fn mask_choice_names() -> MaskChoiceNames {
    use maskfr_masks::pipeline::{NAMED_COLORS, RENDERER_KINDS};
    MaskChoiceNames {
        kinds: maskfr_masks::template::SHAPES
            .iter()
            .map(|s| s.name().to_string())
            .chain(RENDERER_KINDS.map(String::from))
            .collect(),
        colors: NAMED_COLORS.iter().map(|c| c.0.to_string()).collect(),
        patterns: maskfr_masks::texture::PATTERNS.iter().map(|p| p.name().to_string()).collect(),
    }
}
