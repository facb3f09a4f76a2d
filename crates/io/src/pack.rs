//! Packing a dataset into InsightFace's RecordIO layout, streamed: whatever the dataset's
//! size, a few chunks of images are in memory at once. Entries are read and validated (the
//! header's size, then a full decode) by a pool of threads a chunk at a time, while one
//! writer appends the previous chunk in order; record 0 (the image and identity ranges,
//! known only at the end) is written as a placeholder of the same length and rewritten last.
//! A bad image is listed and skipped, and the pack refused when more than `max_bad` of the
//! images are bad. Five landmarks per image (from a file, or a packed `.rec`'s own) go into
//! its IRHeader; with `align` each image is stored as its ArcFace crop instead.

use crate::align::{check_landmarks, norm_crop, norm_transform, Point, Warp};
use crate::folder::{identity_folders, images_in, per_identity, read_image_file};
use crate::image_codec::{decode, encode_jpeg, Dims, Rgb, MAX_SIDE};
use crate::recordio::{pack as pack_record, unpack, Header, Layout, RecordFile, RecordWriter};
use crate::{err, Error, Result};
use rayon::prelude::*;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// What is packed.
pub enum Input {
    /// `root/<identity>/<image>`: sorted folder names are labels 0, 1, ….
    Folder(PathBuf),
    /// An insightface `.lst`: `index<TAB>path<TAB>label` lines (more columns ignored; the
    /// label may be written as a float), grouped by ascending label. Paths are relative to
    /// the list's folder and may not leave it, unless `root` is given: then they are
    /// relative to it, and absolute paths and `..` are the caller's choice.
    List { lst: PathBuf, root: Option<PathBuf> },
    /// An existing `.rec` (through `idx` when given). With `identities` (a file of labels,
    /// one a line) only those identities are packed, renumbered 0, 1, … in ascending order.
    Record { rec: PathBuf, idx: Option<PathBuf>, identities: Option<PathBuf> },
}

pub struct PackConfig {
    pub threads: usize,
    /// The share of the images that may be bad (listed and skipped); one more refuses the
    /// pack. 0: any bad image refuses it.
    pub max_bad: f64,
    /// Each image's five landmarks, for a folder or `.lst` input (a `.rec` brings its own):
    /// stored in its IRHeader; an image the set does not name is bad.
    pub landmarks: Option<LandmarkSet>,
    /// Store each image as its 112×112 ArcFace crop (`norm_crop`), re-encoded as JPEG of this
    /// quality, with its landmarks moved into the crop; an image without landmarks is bad.
    pub align_quality: Option<u8>,
    /// Which OpenCV's `warpAffine` those crops reproduce (4.x's fixed point or 5.x's float).
    pub align_warp: Warp,
}

/// The side of the crops `align_quality` stores.
pub const ALIGNED_SIZE: usize = 112;

/// Landmarks by image path: relative to the folder, or as the `.lst` writes it.
pub struct LandmarkSet {
    /// Where they were read, for messages.
    pub file: PathBuf,
    pub points: HashMap<PathBuf, [Point; 5]>,
}

/// Counters a caller polls while `pack` runs (a progress bar).
#[derive(Default)]
pub struct PackProgress {
    /// Images to validate (0 until the input is scanned).
    pub total: AtomicU64,
    /// Validated and written or listed as bad.
    pub done: AtomicU64,
    pub bad: AtomicU64,
}

#[derive(Debug, PartialEq)]
pub struct PackSummary {
    pub images: u64,
    pub identities: u64,
    /// Identities left without any image (all of theirs were bad): empty ranges.
    pub empty_identities: u64,
    pub bad: u64,
    /// Where the bad images are listed, one a line (`OUT.bad.txt`), when there are any.
    pub bad_list: Option<PathBuf>,
}

/// `OUT.bad.txt` beside `OUT.rec`.
pub fn bad_list_path(out: &Path) -> PathBuf {
    out.with_extension("bad.txt")
}

/// Bad images named in the error that refuses a pack; the list file has them all.
const NAMED: usize = 20;

enum Loc {
    /// A file, and its path relative to the input's root (its key in a [`LandmarkSet`]).
    File(PathBuf, PathBuf),
    Record(Arc<RecordFile>, u64),
}

/// One image to pack; its label, or None where the record's own header says it.
struct Entry {
    label: Option<u32>,
    loc: Loc,
}

type Entries = Box<dyn Iterator<Item = Result<Entry>> + Send>;

struct Plan {
    total: u64,
    /// Identities declared by the input (the writer adds any its labels go past).
    identities: u64,
    entries: Entries,
}

fn folder_plan(root: &Path) -> Result<Plan> {
    let ids = identity_folders(root)?;
    // Counted now (for the progress's total), listed again as the pack reaches each folder:
    // no list of every file is held.
    let counts = per_identity(&ids, |id| images_in(&root.join(id)).map(|v| v.len()))?;
    let root = root.to_path_buf();
    let identities = ids.len() as u64;
    let entries = ids.into_iter().enumerate().flat_map(move |(label, id)| -> Entries {
        let dir = root.join(&id);
        match images_in(&dir) {
            Ok(names) => Box::new(names.into_iter().map(move |n| {
                Ok(Entry { label: Some(label as u32), loc: Loc::File(dir.join(&n), Path::new(&id).join(n)) })
            })),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    });
    Ok(Plan { total: counts.iter().sum::<usize>() as u64, identities, entries: Box::new(entries) })
}

/// A label as the formats write it (a float in `.lst` files and IRHeaders): a whole number
/// below 2^24, which f32 holds exactly.
fn whole_label(v: f64) -> Option<u32> {
    (v.fract() == 0.0 && (0.0..16_777_216.0).contains(&v)).then_some(v as u32)
}

/// `.lst` line `n` (1-based): its path as written and its label.
fn list_line(lst: &Path, n: usize, line: &str, base: &Path, confined: bool) -> Result<(PathBuf, u32)> {
    let at = || format!("{}: line {n}", lst.display());
    let cols: Vec<&str> = line.split('\t').collect();
    if cols.len() < 3 {
        return err(format!("{}: expected 'index<TAB>path<TAB>label', got {line:?}", at()));
    }
    let label = cols[2].trim().parse::<f64>().ok().and_then(whole_label);
    let label =
        label.ok_or_else(|| Error(format!("{}: label {:?} is not a whole number in [0, 2^24)", at(), cols[2])))?;
    let p = Path::new(cols[1]);
    if confined {
        let mut depth = 0i64;
        for c in p.components() {
            depth += match c {
                Component::Normal(_) => 1,
                Component::CurDir => 0,
                Component::ParentDir => -1,
                Component::RootDir | Component::Prefix(_) => -1 - depth, // absolute: out at once
            };
            if depth < 0 {
                return err(format!(
                    "{}: {} is outside {}, the list's folder (absolute paths and '..' need an explicit root)",
                    at(),
                    p.display(),
                    base.display()
                ));
            }
        }
    }
    Ok((p.to_path_buf(), label))
}

fn lines(lst: &Path) -> Result<impl Iterator<Item = (usize, Result<String>)>> {
    let f = File::open(lst).map_err(|e| Error(format!("{}: cannot open ({e})", lst.display())))?;
    let name = lst.display().to_string();
    let read = move |l: std::io::Result<String>| l.map_err(|e| Error(format!("{name}: cannot read ({e})")));
    Ok(BufReader::new(f)
        .lines()
        .enumerate()
        .map(move |(i, l)| (i + 1, read(l)))
        .filter(|(_, l)| l.as_ref().map_or(true, |l| !l.trim().is_empty())))
}

fn list_plan(lst: &Path, root: Option<&Path>) -> Result<Plan> {
    let base = match root {
        Some(r) => r.to_path_buf(),
        None => lst.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf(),
    };
    let confined = root.is_none();
    // A first pass checks every line (paths, labels, their order) before anything is read.
    let (mut total, mut last) = (0u64, None::<u32>);
    for (n, line) in lines(lst)? {
        let (_, label) = list_line(lst, n, &line?, &base, confined)?;
        if last.is_some_and(|l| label < l) {
            return err(format!(
                "{}: line {n}: label {label} after label {}: the list must be grouped by ascending label (sort -s -t$'\\t' -k3,3g)",
                lst.display(),
                last.unwrap_or(0)
            ));
        }
        (total, last) = (total + 1, Some(label));
    }
    let owned = lst.to_path_buf();
    let entries = lines(lst)?.map(move |(n, line)| {
        let (p, label) = list_line(&owned, n, &line?, &base, confined)?;
        Ok(Entry { label: Some(label), loc: Loc::File(base.join(&p), p) })
    });
    Ok(Plan { total, identities: last.map_or(0, |l| l as u64 + 1), entries: Box::new(entries) })
}

fn record_plan(rec: &Path, idx: Option<&Path>, subset: Option<&Path>) -> Result<Plan> {
    let file = Arc::new(RecordFile::open(rec, idx)?);
    let layout = Layout::of(&file)?;
    let (entries, identities): (Vec<(u32, u64, u64)>, u64) = match (layout.identities, subset) {
        (None, None) => {
            let total = layout.images.len() as u64;
            let entries =
                layout.images.into_iter().map(move |k| Ok(Entry { label: None, loc: Loc::Record(file.clone(), k) }));
            return Ok(Plan { total, identities: 0, entries: Box::new(entries) });
        }
        (None, Some(_)) => {
            return err(format!(
                "{}: no InsightFace identity header (record 0 with the identity range): a subset by identity needs one",
                rec.display()
            ))
        }
        (Some(ids), None) => (ids.iter().enumerate().map(|(l, &(s, e))| (l as u32, s, e)).collect(), ids.len() as u64),
        (Some(ids), Some(list)) => {
            let mut labels = vec![];
            for (n, line) in lines(list)? {
                let line = line?;
                let l = line.trim().parse::<u64>().ok().filter(|&l| l < ids.len() as u64).ok_or_else(|| {
                    Error(format!(
                        "{}: line {n}: {line:?} is not the label of one of the {} identities of {}",
                        list.display(),
                        ids.len(),
                        rec.display()
                    ))
                })?;
                labels.push(l as usize);
            }
            labels.sort_unstable();
            labels.dedup();
            let n = labels.len() as u64;
            (labels.into_iter().enumerate().map(|(new, old)| (new as u32, ids[old].0, ids[old].1)).collect(), n)
        }
    };
    let total = entries.iter().map(|&(_, s, e)| e.saturating_sub(s)).sum();
    let entries = entries.into_iter().flat_map(move |(label, s, e)| {
        let file = file.clone();
        (s..e).map(move |k| Ok(Entry { label: Some(label), loc: Loc::Record(file.clone(), k) }))
    });
    Ok(Plan { total, identities, entries: Box::new(entries) })
}

/// An image ready to write: its label, encoded bytes and landmarks.
type Packed = (u32, Vec<u8>, Option<[Point; 5]>);

/// Reads and fully decodes one entry (aligning it with `align_quality`): what to write, or
/// why it is bad.
fn validate(e: &Entry, cfg: &PackConfig) -> std::result::Result<Packed, String> {
    let r = match &e.loc {
        Loc::File(p, rel) => read_image_file(p).and_then(|bytes| {
            let what = p.display().to_string();
            let img = decode(&bytes, &what, Dims::AtMost(MAX_SIDE))?;
            let landmarks = match &cfg.landmarks {
                None => None,
                Some(set) => {
                    let l = set.points.get(rel).ok_or_else(|| {
                        Error(format!("{what}: no landmarks for {} in {}", rel.display(), set.file.display()))
                    })?;
                    check_landmarks(l, &format!("{what} (landmarks in {})", set.file.display()))?;
                    Some(*l)
                }
            };
            finish(e.label.unwrap_or(0), bytes, landmarks, img, &what, cfg)
        }),
        Loc::Record(f, k) => f.read_key(*k).and_then(|payload| {
            let what = format!("{}: record {k}", f.path().display());
            let (h, body) = unpack(&payload, &what)?;
            let own = h.identity();
            let label = match e.label {
                Some(l) => l,
                None => whole_label(own as f64)
                    .ok_or_else(|| Error(format!("{what}: label {own} is not a whole number in [0, 2^24)")))?,
            };
            let img = decode(body, &what, Dims::AtMost(MAX_SIDE))?;
            finish(label, body.to_vec(), h.landmarks(&what)?, img, &what, cfg)
        }),
    };
    r.map_err(|e| e.0)
}

/// The image as stored: as read, or with `align_quality` its crop and the landmarks moved
/// into it by the same similarity.
fn finish(
    label: u32,
    bytes: Vec<u8>,
    landmarks: Option<[Point; 5]>,
    img: Rgb,
    what: &str,
    cfg: &PackConfig,
) -> Result<Packed> {
    let Some(quality) = cfg.align_quality else { return Ok((label, bytes, landmarks)) };
    let Some(l) = landmarks else { return err(format!("{what}: no landmarks to align it by")) };
    let crop = norm_crop(&img, &l, ALIGNED_SIZE, cfg.align_warp, what)?;
    let m = norm_transform(&l, ALIGNED_SIZE)?;
    let moved = l.map(|[x, y]| [m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]]);
    Ok((label, encode_jpeg(&crop, quality)?, Some(moved)))
}

type Chunk = Vec<std::result::Result<Packed, String>>;

/// Packs `input` into `out` (`X.rec`, with `X.idx` beside it; both renamed into place
/// whole), listing bad images in `X.bad.txt`.
pub fn pack(input: &Input, out: &Path, cfg: &PackConfig, progress: &PackProgress) -> Result<PackSummary> {
    if !(0.0..=1.0).contains(&cfg.max_bad) {
        return err(format!("pack: the share of bad images allowed must be in [0, 1], got {}", cfg.max_bad));
    }
    if cfg.landmarks.is_some() && matches!(input, Input::Record { .. }) {
        return err("pack: a .rec input brings its records' own landmarks: a landmarks file is for a folder or a .lst");
    }
    let mut plan = match input {
        Input::Folder(root) => folder_plan(root)?,
        Input::List { lst, root } => list_plan(lst, root.as_deref())?,
        Input::Record { rec, idx, identities } => record_plan(rec, idx.as_deref(), identities.as_deref())?,
    };
    progress.total.store(plan.total, Ordering::Relaxed);
    let threads = cfg.threads.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error(format!("pack: cannot start {threads} threads ({e})")))?;
    // Two chunks queued for the writer, one being validated: memory is a few chunks. An
    // input that fails part-way (a folder gone) is sent on, so the writer discards its work.
    let (tx, rx) = sync_channel::<Result<Chunk>>(2);
    std::thread::scope(|s| {
        // The writer's files are opened, flushed and renamed on its own thread, start to end.
        let written = s.spawn(|| Writer::new(out, plan.identities, cfg.max_bad)?.run(rx, progress));
        let chunk = 64 * threads;
        let read = (|| -> Result<()> {
            loop {
                let entries = plan.entries.by_ref().take(chunk).collect::<Result<Vec<_>>>()?;
                if entries.is_empty() {
                    return Ok(());
                }
                let done: Chunk = pool.install(|| entries.par_iter().map(|e| validate(e, cfg)).collect());
                if tx.send(Ok(done)).is_err() {
                    return Ok(()); // the writer stopped: its error is the one to report
                }
            }
        })();
        if let Err(e) = &read {
            let _ = tx.send(Err(e.clone()));
        }
        drop(tx);
        let written = written.join().unwrap_or_else(|_| err("pack: the writer thread panicked"));
        read.and(written)
    })
}

/// The in-order writer: image records as they come, then the identity records, then the
/// real record 0.
struct Writer {
    w: RecordWriter,
    identities: u64,
    max_bad: f64,
    /// The next image's key (images are keys 1, 2, …).
    key: u64,
    /// The first key of each label seen so far.
    starts: Vec<u64>,
    bad_path: PathBuf,
    bad_tmp: PathBuf,
    bad_file: Option<BufWriter<File>>,
    bad: u64,
    named: Vec<String>,
}

/// Record 0's payload: the image range `[1, first)` and the identity range after it. Its
/// length does not depend on the values (two f32 labels, never the RecordIO magic).
fn head(first: u64, identities: u64) -> Vec<u8> {
    pack_record(&Header::vector(vec![first as f32, (first + identities) as f32], 0), &[])
}

impl Writer {
    fn new(out: &Path, identities: u64, max_bad: f64) -> Result<Writer> {
        let mut w = RecordWriter::create(out, &out.with_extension("idx"))?;
        w.write(0, &head(0, 0))?;
        let bad_path = bad_list_path(out);
        let mut bad_tmp = bad_path.clone().into_os_string();
        bad_tmp.push(format!(".{}.tmp", std::process::id()));
        Ok(Writer {
            w,
            identities,
            max_bad,
            key: 1,
            starts: vec![],
            bad_path,
            bad_tmp: bad_tmp.into(),
            bad_file: None,
            bad: 0,
            named: vec![],
        })
    }

    fn run(mut self, rx: Receiver<Result<Chunk>>, progress: &PackProgress) -> Result<PackSummary> {
        let tmp = self.bad_tmp.clone();
        let r = self.receive(rx, progress).and_then(|_| self.finish());
        if r.is_err() {
            let _ = std::fs::remove_file(tmp);
        }
        r
    }

    fn list_bad(&mut self, why: String) -> Result<()> {
        let fail = |e: std::io::Error| Error(format!("{}: {e}", self.bad_path.display()));
        if self.bad_file.is_none() {
            self.bad_file = Some(BufWriter::new(File::create(&self.bad_tmp).map_err(fail)?));
        }
        if let Some(f) = self.bad_file.as_mut() {
            writeln!(f, "{}", why.replace('\n', " ")).map_err(fail)?;
        }
        self.bad += 1;
        if self.named.len() < NAMED {
            self.named.push(why);
        }
        Ok(())
    }

    fn receive(&mut self, rx: Receiver<Result<Chunk>>, progress: &PackProgress) -> Result<()> {
        for chunk in rx {
            for r in chunk? {
                match r {
                    Ok((label, body, landmarks)) => self.image(label, &body, landmarks.as_ref())?,
                    Err(why) => {
                        self.list_bad(why)?;
                        progress.bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
                progress.done.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<PackSummary> {
        let images = self.key - 1;
        let seen = images + self.bad;
        let allowed = (self.max_bad * seen as f64) as u64;
        self.close_bad_list()?;
        if seen == 0 {
            return err("pack: no images to pack");
        }
        if self.bad > allowed || images == 0 {
            let more = self.bad.saturating_sub(NAMED as u64);
            return err(format!(
                "pack: {} of the {seen} images cannot be read or decoded, more than the {}% allowed; nothing written (all are listed in {}):\n  {}{}",
                self.bad,
                100.0 * self.max_bad,
                self.bad_path.display(),
                self.named.join("\n  "),
                if more > 0 { format!("\n  … and {more} more") } else { String::new() }
            ));
        }
        let n = self.identities.max(self.starts.len() as u64);
        self.starts.resize(n as usize, self.key);
        self.starts.push(self.key);
        let first = self.key;
        let mut empty = 0;
        for (l, r) in self.starts.windows(2).enumerate() {
            empty += u64::from(r[0] == r[1]);
            self.w.write(first + l as u64, &pack_record(&Header::vector(vec![r[0] as f32, r[1] as f32], 0), &[]))?;
        }
        self.w.rewrite_first(&head(first, n))?;
        self.w.finish()?;
        Ok(PackSummary {
            images,
            identities: n,
            empty_identities: empty,
            bad: self.bad,
            bad_list: (self.bad > 0).then(|| self.bad_path.clone()),
        })
    }

    fn image(&mut self, label: u32, body: &[u8], landmarks: Option<&[Point; 5]>) -> Result<()> {
        let l = label as usize;
        if l + 1 < self.starts.len() {
            return err(format!(
                "pack: image {} has label {label} after label {}: the input must be grouped by ascending label",
                self.key,
                self.starts.len() - 1
            ));
        }
        self.starts.resize(l + 1, self.key);
        self.w.write(self.key, &pack_record(&Header::image(label as f32, landmarks, self.key), body))?;
        self.key += 1;
        Ok(())
    }

    /// Renames the bad list into place, or removes a stale one left by an earlier pack.
    fn close_bad_list(&mut self) -> Result<()> {
        let fail = |e: std::io::Error| Error(format!("{}: {e}", self.bad_path.display()));
        match self.bad_file.take() {
            Some(mut f) => {
                f.flush().and_then(|_| f.get_ref().sync_all()).map_err(fail)?;
                maskfr_core::durable::rename_synced(&self.bad_tmp, &self.bad_path).map_err(fail)
            }
            None => match std::fs::remove_file(&self.bad_path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(fail(e)),
                _ => Ok(()),
            },
        }
    }
}
