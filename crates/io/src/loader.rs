//! The training loader: per-epoch shuffle from a seed, sharding by rank, decoding, random
//! horizontal flip, an augmentation hook and normalisation to CHW f32, with batches built
//! ahead by worker threads. A sample's five landmarks, where its record has them, go to the
//! augmentation (masks placed on the face itself) and out with the batch, mirrored with it. Batch `b` of an epoch depends only on (seed, epoch, b): the same
//! seed gives the same batches whatever the thread count or timing.

use crate::align::Point;
use crate::image_codec::{decode, Dims, Rgb};
use crate::recordio::{unpack, RecordFile};
use crate::{err, Result};
use maskfr_core::random::mix;
use std::collections::HashSet;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread;

/// A sample as its source holds it.
#[derive(Debug)]
pub struct Sample {
    pub label: i32,
    /// The encoded image.
    pub bytes: Vec<u8>,
    /// Its face's five landmarks, where the source has them; else the face is taken to sit
    /// on the aligned template.
    pub landmarks: Option<[Point; 5]>,
}

/// Where samples come from: sample `i` is an encoded image, its label and maybe landmarks.
pub trait Source: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn read(&self, i: usize) -> Result<Sample>;
    /// Where sample `i` lives, for error messages.
    fn describe(&self, i: usize) -> String;
    /// The data set (its file or folder), for error messages.
    fn name(&self) -> String;
}

/// Image records of a `.rec` (keys given), labels and landmarks from their IRHeaders.
pub struct RecordSource {
    pub file: Arc<RecordFile>,
    pub keys: Vec<u64>,
}

impl Source for RecordSource {
    fn len(&self) -> usize {
        self.keys.len()
    }
    fn read(&self, i: usize) -> Result<Sample> {
        let payload = self.file.read_key(self.keys[i])?;
        let what = self.describe(i);
        let (h, body) = unpack(&payload, &what)?;
        Ok(Sample { label: h.identity() as i32, bytes: body.to_vec(), landmarks: h.landmarks(&what)? })
    }
    fn describe(&self, i: usize) -> String {
        format!("{}: record {}", self.file.path().display(), self.keys[i])
    }
    fn name(&self) -> String {
        self.file.path().display().to_string()
    }
}

/// Pixel work applied to every decoded sample before the flip and normalisation (the mask
/// synthesizers plug in here, and [`crate::photometric::WithPhotometric`] runs the photometric
/// ops after them); `landmarks` are the face's own when its source has them, `seed` the
/// sample's own seed. Returns whether the sample is now masked.
pub trait Augment: Send + Sync {
    fn apply(&self, img: &mut Rgb, landmarks: Option<&[Point; 5]>, seed: u64) -> bool;
}

#[derive(Clone)]
pub struct LoaderConfig {
    pub batch: usize,
    pub seed: u64,
    pub rank: usize,
    pub world: usize,
    pub shuffle: bool,
    pub flip: bool,
    /// Images must be `size × size` (aligned faces).
    pub size: usize,
    /// Batches built ahead of the consumer.
    pub prefetch: usize,
    pub threads: usize,
    /// Skip (and count) unreadable records instead of failing; a skipped sample's slot is
    /// filled by the next readable one in this rank's order, so batches stay full.
    pub skip_corrupt: bool,
    /// With `skip_corrupt`: the share of this rank's samples in an epoch that may be skipped;
    /// one more stops the epoch with an error naming the data, the count and the share.
    pub max_corrupt_share: f64,
}

/// A sample skipped as corrupt: its index in the source, where it lives and what is wrong.
#[derive(Debug, Clone)]
pub struct Skip {
    pub index: usize,
    pub why: String,
}

/// A batch: `[batch, 3, size, size]` normalised `(x/255 − 0.5)/0.5`, labels, which samples
/// the augmentation masked, each sample's landmarks (as its image: mirrored when it was
/// flipped), and the samples skipped as corrupt while building it (once per epoch each: one
/// met again as a replacement is not listed again).
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<i32>,
    /// Each sample's index in the source (to look up precomputed teacher embeddings).
    pub indices: Vec<u32>,
    pub masked: Vec<bool>,
    pub landmarks: Vec<Option<[Point; 5]>>,
    pub skipped: Vec<Skip>,
}

/// This rank's sample order for `epoch`: a seeded permutation (Fisher–Yates), padded by
/// wrapping so every rank gets the same count, then every `world`-th from `rank`.
pub fn shard(n: usize, cfg: &LoaderConfig, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if cfg.shuffle {
        let s = mix(cfg.seed, epoch);
        for i in (1..n).rev() {
            let j = (mix(s, i as u64) % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
    }
    let per_rank = n.div_ceil(cfg.world.max(1));
    (0..per_rank).map(|k| order[(k * cfg.world + cfg.rank) % n.max(1)]).collect()
}

/// Decodes, checks, augments, flips and normalises one sample into `out` (`3·size²`);
/// returns whether the augmentation masked it, and its landmarks as they now lie. The mask
/// is drawn before the flip, so a flipped sample's mask is mirrored with its face.
fn prepare(
    s: &Sample,
    what: &str,
    cfg: &LoaderConfig,
    aug: Option<&dyn Augment>,
    seed: u64,
    out: &mut [f32],
) -> Result<(bool, Option<[Point; 5]>)> {
    let mut img = decode(&s.bytes, what, Dims::Square(cfg.size))?;
    let masked = aug.is_some_and(|a| a.apply(&mut img, s.landmarks.as_ref(), seed));
    let flip = cfg.flip && mix(seed, 1) & 1 == 1;
    normalize(&img, flip, out);
    Ok((masked, s.landmarks.map(|l| if flip { mirror_landmarks(&l, img.width) } else { l })))
}

/// Five landmarks of a `width`-wide image mirrored left to right: x → width − 1 − x (pixel
/// centres, as [`normalize`] mirrors pixels), and the eyes and mouth corners swapped so the
/// order stays left eye, right eye, nose, left and right mouth corners.
pub fn mirror_landmarks(l: &[Point; 5], width: usize) -> [Point; 5] {
    [1, 0, 2, 4, 3].map(|k| [(width - 1) as f64 - l[k][0], l[k][1]])
}

/// An RGB image as CHW f32 `(x/255 − 0.5)/0.5` into `out` (`3·w·h`), mirrored if `flip`.
pub fn normalize(img: &Rgb, flip: bool, out: &mut [f32]) {
    let (w, h) = (img.width, img.height);
    for y in 0..h {
        for x in 0..w {
            let sx = if flip { w - 1 - x } else { x };
            let p = &img.data[(y * w + sx) * 3..][..3];
            for c in 0..3 {
                out[c * w * h + y * w + x] = p[c] as f32 / 127.5 - 1.0;
            }
        }
    }
}

/// Skipped samples described in an epoch's error, the rest counted.
const EXAMPLES: usize = 5;

/// One epoch's batches, built by worker threads in order.
pub struct Epoch {
    receivers: Vec<Receiver<Result<Batch>>>,
    first: usize,
    next: usize,
    batches: usize,
    epoch: u64,
    /// This rank's samples in the epoch, and how many of them may be skipped as corrupt.
    samples: usize,
    allowed: usize,
    skipped: HashSet<usize>,
    examples: Vec<String>,
    name: String,
    share: f64,
}

impl Epoch {
    pub fn batches(&self) -> usize {
        self.batches
    }

    /// Counts a batch's skipped samples not seen before this epoch, in batch order (so the
    /// same data stops at the same batch whatever the thread timing); past the allowed
    /// share, an error.
    fn tally(&mut self, mut batch: Batch) -> Result<Batch> {
        batch.skipped.retain(|s| self.skipped.insert(s.index));
        let room = EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(batch.skipped.iter().take(room).map(|s| s.why.clone()));
        if self.skipped.len() <= self.allowed {
            return Ok(batch);
        }
        err(format!(
            "{}: {} of the {} samples of epoch {} on this rank are corrupt ({:.2}%), more than maxCorruptShare {} allows ({:.2}%); the first: {}",
            self.name,
            self.skipped.len(),
            self.samples,
            self.epoch,
            100.0 * self.skipped.len() as f64 / self.samples as f64,
            self.share,
            100.0 * self.share,
            self.examples.join("; ")
        ))
    }
}

impl Iterator for Epoch {
    type Item = Result<Batch>;
    fn next(&mut self) -> Option<Result<Batch>> {
        if self.next >= self.batches {
            return None;
        }
        let r = &self.receivers[(self.next - self.first) % self.receivers.len()];
        self.next += 1;
        let batch = r.recv().unwrap_or_else(|_| err("loader: a worker thread stopped"));
        Some(batch.and_then(|b| self.tally(b)))
    }
}

/// Starts building epoch `epoch`'s batches from batch `first` on (a resumed run skips what
/// it already trained on without decoding it; the last partial batch is dropped, as
/// training loaders do). Dropping the iterator stops the workers after their current batch.
pub fn epoch(
    source: Arc<dyn Source>,
    aug: Option<Arc<dyn Augment>>,
    cfg: &LoaderConfig,
    epoch: u64,
    first: usize,
) -> Result<Epoch> {
    if cfg.batch == 0 || cfg.world == 0 || cfg.rank >= cfg.world {
        return err(format!(
            "loader: batch {} rank {} world {}: need batch ≥ 1 and rank < world",
            cfg.batch, cfg.rank, cfg.world
        ));
    }
    if !(0.0..=1.0).contains(&cfg.max_corrupt_share) {
        return err(format!("loader: maxCorruptShare must be in [0, 1], got {}", cfg.max_corrupt_share));
    }
    if source.is_empty() {
        return err(format!("{}: the dataset has no images", source.name()));
    }
    let order = Arc::new(shard(source.len(), cfg, epoch));
    let batches = order.len() / cfg.batch;
    if first > batches {
        return err(format!("loader: epoch {epoch} has {batches} batches, cannot start at batch {first}"));
    }
    let allowed = if cfg.skip_corrupt { (cfg.max_corrupt_share * order.len() as f64) as usize } else { 0 };
    let threads = cfg.threads.clamp(1, (batches - first).max(1));
    let depth = cfg.prefetch.div_ceil(threads).max(1);
    let mut receivers = Vec::new();
    for t in 0..threads {
        let (tx, rx) = sync_channel(depth);
        receivers.push(rx);
        let (source, aug, order, cfg) = (source.clone(), aug.clone(), order.clone(), cfg.clone());
        thread::spawn(move || {
            for b in (first + t..batches).step_by(threads) {
                let batch = build(&*source, aug.as_deref(), &order, &cfg, epoch, b, allowed);
                if tx.send(batch).is_err() {
                    return; // the consumer went away
                }
            }
        });
    }
    Ok(Epoch {
        receivers,
        first,
        next: first,
        batches,
        epoch,
        samples: order.len(),
        allowed,
        skipped: HashSet::new(),
        examples: Vec::new(),
        name: source.name(),
        share: cfg.max_corrupt_share,
    })
}

/// Batch `b` of this rank's epoch `order`: slot k holds sample `b·batch + k`. With
/// `skip_corrupt` a corrupt sample's slot goes to the next readable sample after the
/// batch's own (wrapping), so the batch is full and depends only on (seed, epoch, b).
fn build(
    source: &dyn Source,
    aug: Option<&dyn Augment>,
    order: &[usize],
    cfg: &LoaderConfig,
    epoch: u64,
    b: usize,
    allowed: usize,
) -> Result<Batch> {
    let per = 3 * cfg.size * cfg.size;
    let mut batch = Batch {
        images: vec![0.0; cfg.batch * per],
        labels: vec![],
        indices: vec![],
        masked: vec![],
        landmarks: vec![],
        skipped: vec![],
    };
    let n = order.len();
    let mut spares = ((b + 1) * cfg.batch..(b + 1) * cfg.batch + n - cfg.batch).map(|p| order[p % n]);
    for k in 0..cfg.batch {
        let mut i = order[b * cfg.batch + k];
        loop {
            let seed = mix(mix(cfg.seed, epoch), (b * cfg.batch + k) as u64 ^ ((i as u64) << 32));
            let res = source.read(i).and_then(|s| {
                prepare(&s, &source.describe(i), cfg, aug, seed, &mut batch.images[k * per..(k + 1) * per])
                    .map(|(masked, landmarks)| (s.label, masked, landmarks))
            });
            match res {
                Ok((label, masked, landmarks)) => {
                    batch.labels.push(label);
                    batch.indices.push(i as u32);
                    batch.masked.push(masked);
                    batch.landmarks.push(landmarks);
                    break;
                }
                Err(e) if cfg.skip_corrupt => batch.skipped.push(Skip { index: i, why: e.0 }),
                Err(e) => return Err(e),
            }
            if batch.skipped.len() > allowed {
                return Ok(batch); // over the allowed share: Epoch::tally refuses it
            }
            i = match spares.next() {
                Some(i) => i,
                None => {
                    return err(format!(
                        "{}: fewer than {} readable samples among the {n} of epoch {epoch} on this rank",
                        source.name(),
                        cfg.batch
                    ))
                }
            };
        }
    }
    Ok(batch)
}
