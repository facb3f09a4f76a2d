//! `maskfr mask IN OUT`: a masked copy of a dataset, of the same kind — an image folder, a
//! RecordIO `.rec` or an InsightFace verification `.bin` — for masked verification sets and
//! masked training sets. Images stream through a pool of threads a chunk at a time (memory is
//! a few chunks, whatever the dataset's size; a `.bin` is read whole, as every reader of one
//! does) and are written in input order by one writer. Image i (in input order) is masked by
//! the pipeline built from the user's choices with seed `mix(seed, i)`: the output does not
//! depend on the thread count. A `.rec`'s records bring their landmarks, a folder's images may
//! have theirs from a file; other images are taken as aligned faces (the ArcFace template
//! scaled to the image).
//!
//! What is written: a masked image is re-encoded in its own format (JPEG at `quality`, PNG
//! lossless); an image left unmasked is copied byte for byte; names, record keys and headers
//! (landmarks included), identity records, pairs and other files stay as they were, so labels
//! and pair lists remain valid. A bad image (unreadable as an image) is copied unchanged,
//! listed in the bad list and counted; more than `max_bad` of them refuse the run, writing only
//! that list. The output, its sidecar and the list are each renamed into place whole.

mod bin;
mod folder;
mod record;
pub mod sidecar;

use crate::choices::MaskInfo;
use crate::geometry::Point;
use crate::pipeline::{MaskChoices, MaskPipeline, Synthesizers};
use maskfr_core::random::mix;
use maskfr_core::{Error, Result};
use maskfr_io::image_codec::{decode, encode_jpeg, encode_png, Dims, MAX_SIDE};
use maskfr_io::pack::{LandmarkSet, PackProgress};
use rayon::prelude::*;
use sidecar::{json_string, line, Key, LineFile};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::sync_channel;

pub struct OfflineConfig {
    pub choices: MaskChoices,
    pub seed: u64,
    pub threads: usize,
    /// JPEG quality of re-encoded JPEGs (1–100).
    pub quality: u8,
    /// The share of bad images allowed (copied unmasked and listed); one more refuses the run.
    pub max_bad: f64,
    /// Replace an existing OUT (else it is refused).
    pub overwrite: bool,
    /// A folder's images' landmarks, by path relative to it (`maskfr mask --landmarks`, read
    /// as `pack` reads them): each image is masked on its own face; an image the set does not
    /// name is bad. A `.rec` brings its records' own.
    pub landmarks: Option<LandmarkSet>,
}

/// The kinds of dataset masked, told by the path: a folder, `*.rec`, `*.bin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Folder,
    Record,
    Bin,
}

impl Kind {
    fn of_name(p: &Path) -> Kind {
        match p.extension().and_then(|e| e.to_str()) {
            Some("rec") => Kind::Record,
            Some("bin") => Kind::Bin,
            _ => Kind::Folder,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Folder => "an image folder",
            Kind::Record => "a .rec",
            Kind::Bin => "a .bin",
        }
    }
}

#[derive(Debug)]
pub struct OfflineSummary {
    pub kind: Kind,
    /// Images in the input (bad ones included).
    pub images: u64,
    pub masked: u64,
    pub bad: u64,
    /// Other files copied (a folder) or records that are not images (a `.rec`'s header and
    /// identity records).
    pub copied: u64,
    /// Masks drawn, per (synthesizer, kind).
    pub by_mask: Vec<(String, String, u64)>,
    pub sidecar: PathBuf,
    pub bad_list: Option<PathBuf>,
}

/// `p` + `suffix`, a trailing `/` dropped first (`masked/` → `masked.masks.jsonl`, beside it).
fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.components().collect::<PathBuf>().into_os_string();
    s.push(suffix);
    s.into()
}

/// `OUT.masks.jsonl` beside OUT.
pub fn sidecar_path(out: &Path) -> PathBuf {
    with_suffix(out, ".masks.jsonl")
}

/// Where the bad images are listed: `X.bad.txt` beside `X.rec` or `X.bin` (as `maskfr pack`),
/// `OUT.bad.txt` beside a folder.
pub fn bad_list_path(out: &Path) -> PathBuf {
    match Kind::of_name(out) {
        Kind::Folder => with_suffix(out, ".bad.txt"),
        _ => maskfr_io::pack::bad_list_path(out),
    }
}

/// Bad images named in the error that refuses a run; the list has them all.
const NAMED: usize = 20;

/// Masks `input` into `out`; `progress` counts images as they are written.
pub fn mask_dataset(input: &Path, out: &Path, cfg: &OfflineConfig, progress: &PackProgress) -> Result<OfflineSummary> {
    if !(1..=100).contains(&cfg.quality) {
        return Err(Error(format!("mask: the JPEG quality must be in [1, 100], got {}", cfg.quality)));
    }
    if !(0.0..=1.0).contains(&cfg.max_bad) {
        return Err(Error(format!("mask: the share of bad images allowed must be in [0, 1], got {}", cfg.max_bad)));
    }
    let (input, out): (PathBuf, PathBuf) = (input.components().collect(), out.components().collect());
    let (input, out) = (input.as_path(), out.as_path());
    let kind = check_paths(input, out, cfg.overwrite)?;
    if cfg.landmarks.is_some() && kind != Kind::Folder {
        let why =
            if kind == Kind::Record { "a .rec brings its records' own" } else { "a .bin's images are aligned crops" };
        return Err(Error(format!("mask: landmarks from a file are for a folder input ({why})")));
    }
    let engine = Engine { pipeline: MaskPipeline::from_choices(&cfg.choices)?, seed: cfg.seed, quality: cfg.quality };
    let mut tally = Tally::new(out, header(input, out, cfg), cfg.max_bad, progress)?;
    let copied = match kind {
        Kind::Folder => folder::run(input, out, &engine, &mut tally, cfg)?,
        Kind::Record => record::run(input, out, &engine, &mut tally, cfg)?,
        Kind::Bin => bin::run(input, out, &engine, &mut tally, cfg)?,
    };
    tally.finish(kind, copied)
}

/// The absolute form of `p`, its existing part resolved through links (`..` and `.` of the
/// part not yet there taken as written).
fn resolve(p: &Path) -> Result<PathBuf> {
    let abs = std::env::current_dir().map_err(|e| Error(format!("mask: the current folder: {e}")))?.join(p);
    let mut rest = vec![];
    let mut base = abs.as_path();
    while !base.exists() {
        rest.push(base.file_name().map(|n| n.to_os_string()));
        base = base.parent().unwrap_or(Path::new("/"));
    }
    let mut out = base.canonicalize().map_err(|e| Error(format!("{}: {e}", base.display())))?;
    for c in rest.into_iter().rev() {
        match c {
            Some(n) => out.push(n),
            None => {
                out.pop();
            }
        }
    }
    // Lexically clean what remains (`a/./b`).
    Ok(out.components().filter(|c| !matches!(c, Component::CurDir)).collect())
}

/// The input's kind, after refusing an output of another kind, one that exists (without
/// `overwrite`), or one inside the input (or containing it).
fn check_paths(input: &Path, out: &Path, overwrite: bool) -> Result<Kind> {
    let kind = if input.is_dir() {
        Kind::Folder
    } else if !input.exists() {
        return Err(Error(format!("mask: {}: no such file or folder", input.display())));
    } else {
        match Kind::of_name(input) {
            Kind::Folder => {
                return Err(Error(format!("mask: {}: expected an image folder, a .rec or a .bin", input.display())))
            }
            k => k,
        }
    };
    if Kind::of_name(out) != kind {
        return Err(Error(format!(
            "mask: {} is {}, so the output must be too (a folder's has no .rec/.bin extension), got {}",
            input.display(),
            kind.name(),
            out.display()
        )));
    }
    let (i, o) = (resolve(input)?, resolve(out)?);
    if o.starts_with(&i) {
        return Err(Error(format!("mask: the output {} is (inside) the input {}", out.display(), input.display())));
    }
    if i.starts_with(&o) {
        return Err(Error(format!("mask: the input {} is inside the output {}", input.display(), out.display())));
    }
    if let Ok(m) = std::fs::symlink_metadata(out) {
        if !overwrite {
            return Err(Error(format!("mask: {} exists (--overwrite replaces it)", out.display())));
        }
        if m.is_dir() != (kind == Kind::Folder) {
            let what = if m.is_dir() { "a folder" } else { "not a folder" };
            return Err(Error(format!("mask: {} exists and is {what}: not replaced", out.display())));
        }
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error(format!("mask: {}: cannot create ({e})", parent.display())))?;
    }
    Ok(kind)
}

/// The sidecar's first line: the format's version, the paths and every choice as given.
fn header(input: &Path, out: &Path, cfg: &OfflineConfig) -> String {
    let c = &cfg.choices;
    let list = |v: &[String]| {
        if v.is_empty() {
            "null".to_string()
        } else {
            format!("[{}]", v.iter().map(|s| json_string(s)).collect::<Vec<_>>().join(", "))
        }
    };
    let synth = match c.synthesizers {
        Synthesizers::Template => "template",
        Synthesizers::Renderer => "renderer",
        Synthesizers::Both => "both",
    };
    let textures = c.textures.as_ref().map_or("null".into(), |t| json_string(&t.to_string_lossy()));
    let landmarks = cfg.landmarks.as_ref().map_or("null".into(), |l| json_string(&l.file.to_string_lossy()));
    format!(
        r#"{{"maskfr_masks": 1, "input": {}, "output": {}, "seed": {}, "probability": {}, "template_share": {}, "synthesizer": "{synth}", "kinds": {}, "colors": {}, "patterns": {}, "textures": {textures}, "landmarks": {landmarks}, "quality": {}}}"#,
        json_string(&input.to_string_lossy()),
        json_string(&out.to_string_lossy()),
        cfg.seed,
        c.probability,
        c.template_share,
        list(&c.kinds),
        list(&c.colors),
        list(&c.patterns),
        cfg.quality
    )
}

/// The masking of one image, shared by the three kinds of input.
pub(crate) struct Engine {
    pipeline: MaskPipeline,
    seed: u64,
    quality: u8,
}

/// What became of one image: the bytes to write, the mask drawn, or why it is bad.
pub(crate) struct Masked {
    pub bytes: Vec<u8>,
    pub info: Option<MaskInfo>,
    pub bad: Option<String>,
}

impl Engine {
    /// Masks image `ordinal` (in input order); `bytes` come back unchanged when it is left
    /// unmasked or is bad.
    pub fn mask(&self, bytes: Vec<u8>, what: &str, landmarks: Result<Option<[Point; 5]>>, ordinal: u64) -> Masked {
        let attempt = || -> Result<Option<(Vec<u8>, MaskInfo)>> {
            let mut img = decode(&bytes, what, Dims::AtMost(MAX_SIDE))?;
            let landmarks = landmarks?;
            let Some(info) = self.pipeline.mask(&mut img, landmarks.as_ref(), mix(self.seed, ordinal)) else {
                return Ok(None);
            };
            let jpeg = bytes.starts_with(&[0xff, 0xd8, 0xff]);
            let out = if jpeg { encode_jpeg(&img, self.quality) } else { encode_png(&img) };
            Ok(Some((out.map_err(|e| Error(format!("{what}: {}", e.0)))?, info)))
        };
        match attempt() {
            Ok(Some((out, info))) => Masked { bytes: out, info: Some(info), bad: None },
            Ok(None) => Masked { bytes, info: None, bad: None },
            Err(e) => Masked { bytes, info: None, bad: Some(e.0) },
        }
    }
}

/// Runs `work` over `entries` on `threads` threads, a chunk at a time, handing the results to
/// `sink` in input order on a writer thread while the next chunk is worked on. An error from
/// the entries, a worker or the sink stops the run and is returned.
pub(crate) fn stream<E, R>(
    entries: impl Iterator<Item = Result<E>>,
    threads: usize,
    work: impl Fn(&E) -> Result<R> + Sync,
    sink: impl FnMut(R) -> Result<()> + Send,
) -> Result<()>
where
    E: Send + Sync,
    R: Send,
{
    let threads = threads.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error(format!("mask: cannot start {threads} threads ({e})")))?;
    let (tx, rx) = sync_channel::<Result<Vec<R>>>(2);
    let mut entries = entries;
    let mut sink = sink;
    std::thread::scope(|s| {
        let written = s.spawn(move || -> Result<()> {
            for chunk in rx {
                chunk?.into_iter().try_for_each(&mut sink)?;
            }
            Ok(())
        });
        let chunk = 32 * threads;
        let read = (|| -> Result<()> {
            loop {
                let batch = entries.by_ref().take(chunk).collect::<Result<Vec<E>>>()?;
                if batch.is_empty() {
                    return Ok(());
                }
                let done = pool.install(|| batch.par_iter().map(&work).collect::<Result<Vec<R>>>())?;
                if tx.send(Ok(done)).is_err() {
                    return Ok(()); // the writer stopped: its error is the one to report
                }
            }
        })();
        if let Err(e) = &read {
            let _ = tx.send(Err(e.clone()));
        }
        drop(tx);
        let written = written.join().unwrap_or_else(|_| Err(Error("mask: the writer thread panicked".into())));
        read.and(written)
    })
}

/// The writer's account: sidecar lines, the bad list, counts and the progress.
pub(crate) struct Tally<'a> {
    sidecar: LineFile,
    bad_path: PathBuf,
    bad_file: Option<LineFile>,
    named: Vec<String>,
    images: u64,
    masked: u64,
    bad: u64,
    by_mask: BTreeMap<(&'static str, &'static str), u64>,
    max_bad: f64,
    progress: &'a PackProgress,
}

impl<'a> Tally<'a> {
    fn new(out: &Path, header: String, max_bad: f64, progress: &'a PackProgress) -> Result<Tally<'a>> {
        let mut sidecar = LineFile::create(&sidecar_path(out))?;
        sidecar.write(&header)?;
        Ok(Tally {
            sidecar,
            bad_path: bad_list_path(out),
            bad_file: None,
            named: vec![],
            images: 0,
            masked: 0,
            bad: 0,
            by_mask: BTreeMap::new(),
            max_bad,
            progress,
        })
    }

    /// One image written (in input order).
    pub fn image(&mut self, key: &Key, m: &Masked) -> Result<()> {
        self.sidecar.write(&line(key, m.info.as_ref()))?;
        self.images += 1;
        if let Some(info) = &m.info {
            self.masked += 1;
            *self.by_mask.entry((info.synthesizer.name(), info.kind)).or_default() += 1;
        }
        if let Some(why) = &m.bad {
            if self.bad_file.is_none() {
                self.bad_file = Some(LineFile::create(&self.bad_path)?);
            }
            if let Some(f) = self.bad_file.as_mut() {
                f.write(&why.replace('\n', " "))?;
            }
            self.bad += 1;
            if self.named.len() < NAMED {
                self.named.push(why.clone());
            }
            self.progress.bad.fetch_add(1, Ordering::Relaxed);
        }
        self.progress.done.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Refuses the run when more images are bad than allowed (writing only their list):
    /// called before the output is renamed into place.
    pub fn check(&mut self) -> Result<()> {
        if self.images == 0 {
            return Err(Error("mask: no images in the input".into()));
        }
        let allowed = (self.max_bad * self.images as f64) as u64;
        if self.bad <= allowed {
            return Ok(());
        }
        self.close_bad_list()?;
        let more = self.bad.saturating_sub(NAMED as u64);
        Err(Error(format!(
            "mask: {} of the {} images cannot be read as images, more than the {}% allowed; nothing written (all are listed in {}):\n  {}{}",
            self.bad,
            self.images,
            100.0 * self.max_bad,
            self.bad_path.display(),
            self.named.join("\n  "),
            if more > 0 { format!("\n  … and {more} more") } else { String::new() }
        )))
    }

    /// Renames the bad list into place, or removes a stale one left by an earlier run.
    fn close_bad_list(&mut self) -> Result<()> {
        match self.bad_file.take() {
            Some(f) => f.finish(),
            None => match std::fs::remove_file(&self.bad_path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error(format!("{}: {e}", self.bad_path.display())))
                }
                _ => Ok(()),
            },
        }
    }

    /// After the output is in place: the sidecar and the bad list follow it.
    fn finish(mut self, kind: Kind, copied: u64) -> Result<OfflineSummary> {
        self.close_bad_list()?;
        let sidecar = self.sidecar.path().to_path_buf();
        self.sidecar.finish()?;
        Ok(OfflineSummary {
            kind,
            images: self.images,
            masked: self.masked,
            bad: self.bad,
            copied,
            by_mask: self.by_mask.into_iter().map(|((s, k), n)| (s.to_string(), k.to_string(), n)).collect(),
            sidecar,
            bad_list: (self.bad > 0).then_some(self.bad_path),
        })
    }
}
