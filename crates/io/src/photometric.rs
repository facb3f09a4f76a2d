//! Photometric augmentation of one RGB image from a seed: brightness, contrast and saturation
//! jitter (torchvision's ColorJitter formulas on uint8 images, in a random order as it does),
//! Gaussian blur, JPEG recompression through libjpeg-turbo, and random erasing (torchvision's
//! RandomErasing). Each op has its own probability; the loader runs them after the mask
//! synthesizers (masks are jittered and compressed with the face) and before the flip.
//!
//! Defaults follow insightface's MXNet recognition recipe (`image_iter.py`, the kit the MFR
//! challenge baselines trained with; arcface_torch itself only flips): `ColorJitterAug(0.125,
//! 0.125, 0.125)` on every sample, JPEG recompression at quality 2–20 on half of them
//! (`compress_aug`), and its `cutoff` (a grey square on half the samples) is off unless set,
//! so erasing is off here too; insightface has no blur, so blur is off and its sigma range is
//! torchvision GaussianBlur's default (0.1, 2). Erasing's scale and ratio are RandomErasing's
//! defaults, its fill insightface's grey 128 (what RandomErasing's 0 is after (x − 0.5)/0.5).

use crate::align::Point;
use crate::image_codec::{decode, encode_jpeg, Dims, Rgb};
use crate::loader::Augment;
use crate::{err, Result};
use maskfr_core::random::{mix, normal, Stream};
use std::sync::Arc;

/// A factor jitter: with `probability`, a factor uniform in `range` (torchvision
/// ColorJitter's `(min, max)` form: brightness 0.125 is [0.875, 1.125]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jitter {
    pub probability: f64,
    pub range: [f64; 2],
}

/// Gaussian blur: with `probability`, a sigma uniform in `sigma`; the kernel's radius is
/// ⌈3σ⌉ (at most the image's side − 1), borders reflected (torchvision's and OpenCV's
/// default: `dcb|abcd|cba`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Blur {
    pub probability: f64,
    pub sigma: [f64; 2],
}

/// JPEG recompression: with `probability`, encoded at a quality drawn uniformly from the
/// integers of `quality` (4:2:0, as PIL's `save(quality=q)`), then decoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jpeg {
    pub probability: f64,
    pub quality: [u32; 2],
}

/// What an erased rectangle holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Per-pixel noise: RandomErasing's `value='random'` (standard normal in the normalised
    /// space), i.e. 127.5 + 127.5·z, rounded and clamped to bytes.
    Random,
    Constant([u8; 3]),
}

/// Random erasing as torchvision's RandomErasing: with `probability`, a rectangle of a share
/// of the area uniform in `scale` and an aspect ratio (h/w) log-uniform in `ratio`, placed
/// uniformly; ten tries to find one that fits, else nothing is erased.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Erasing {
    pub probability: f64,
    pub scale: [f64; 2],
    pub ratio: [f64; 2],
    pub fill: Fill,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Photometric {
    pub brightness: Jitter,
    pub contrast: Jitter,
    pub saturation: Jitter,
    pub blur: Blur,
    pub jpeg: Jpeg,
    pub erasing: Erasing,
}

impl Default for Photometric {
    /// insightface's recipe (see the module's documentation).
    fn default() -> Photometric {
        let jitter = Jitter { probability: 1.0, range: [0.875, 1.125] };
        Photometric {
            brightness: jitter,
            contrast: jitter,
            saturation: jitter,
            blur: Blur { probability: 0.0, sigma: [0.1, 2.0] },
            jpeg: Jpeg { probability: 0.5, quality: [2, 20] },
            erasing: Erasing {
                probability: 0.0,
                scale: [0.02, 0.33],
                ratio: [0.3, 3.3],
                fill: Fill::Constant([128; 3]),
            },
        }
    }
}

/// The largest blur sigma accepted: a radius of 60 pixels already flattens a 112² face.
pub const MAX_SIGMA: f64 = 20.0;

/// Salt separating the photometric stream from the others drawn from a sample's seed (the
/// mask synthesizers use the seed itself, the flip `mix(seed, 1)`).
const STREAM: u64 = 0x5048_4f54_4f4d_4554;
const ERASE_TRIES: usize = 10;

fn check_probability(name: &str, p: f64) -> Result<()> {
    if (0.0..=1.0).contains(&p) {
        return Ok(());
    }
    err(format!("photometric.{name}.probability must be a number in [0, 1], got {p}"))
}

/// `[lo, hi]` finite with `min ≤ lo ≤ hi ≤ max` (`lo > min` where `open`).
fn check_range(name: &str, what: &str, r: [f64; 2], min: f64, max: f64, open: bool) -> Result<()> {
    let [lo, hi] = r;
    let low_ok = if open { lo > min } else { lo >= min };
    if lo.is_finite() && hi.is_finite() && low_ok && lo <= hi && hi <= max {
        return Ok(());
    }
    let bound = if max.is_finite() { format!(" ≤ {max}") } else { String::new() };
    err(format!(
        "photometric.{name} must be [min, max] {what} with {min} {} min ≤ max{bound}, got [{lo}, {hi}]",
        if open { "<" } else { "≤" }
    ))
}

impl Photometric {
    /// Every field checked, the first wrong one named (`photometric.blur.sigma …`).
    pub fn validate(&self) -> Result<()> {
        for (name, j) in
            [("brightness", &self.brightness), ("contrast", &self.contrast), ("saturation", &self.saturation)]
        {
            check_probability(name, j.probability)?;
            check_range(&format!("{name}.range"), "factors", j.range, 0.0, f64::INFINITY, false)?;
        }
        check_probability("blur", self.blur.probability)?;
        check_range("blur.sigma", "sigmas", self.blur.sigma, 0.0, MAX_SIGMA, true)?;
        check_probability("jpeg", self.jpeg.probability)?;
        let [qlo, qhi] = self.jpeg.quality;
        if !(1 <= qlo && qlo <= qhi && qhi <= 100) {
            return err(format!(
                "photometric.jpeg.quality must be [min, max] qualities with 1 ≤ min ≤ max ≤ 100, got [{qlo}, {qhi}]"
            ));
        }
        check_probability("erasing", self.erasing.probability)?;
        check_range("erasing.scale", "shares of the area", self.erasing.scale, 0.0, 1.0, true)?;
        check_range("erasing.ratio", "aspect ratios (height/width)", self.erasing.ratio, 0.0, f64::INFINITY, true)
    }

    /// Applies the ops drawn from stream `seed` to `img` in place: the colour jitters in a
    /// random order, then blur, JPEG, erasing (capture, optics, storage, then occlusion last,
    /// as RandomErasing runs last on the tensor). The same seed gives the same pixels.
    pub fn apply(&self, img: &mut Rgb, seed: u64) -> Result<()> {
        let mut s = Stream::new(seed);
        let mut order = [0usize, 1, 2];
        for i in (1..3).rev() {
            order.swap(i, ((s.uniform() * (i + 1) as f64) as usize).min(i));
        }
        let ops: [fn(&mut Rgb, f64); 3] = [brightness, contrast, saturation];
        for k in order {
            let j = [&self.brightness, &self.contrast, &self.saturation][k];
            if s.uniform() < j.probability {
                let f = j.range[0] + (j.range[1] - j.range[0]) * s.uniform();
                ops[k](img, f);
            }
        }
        if s.uniform() < self.blur.probability {
            let [lo, hi] = self.blur.sigma;
            gaussian_blur(img, lo + (hi - lo) * s.uniform());
        }
        if s.uniform() < self.jpeg.probability {
            let [lo, hi] = self.jpeg.quality;
            let q = lo + ((s.uniform() * (hi - lo + 1) as f64) as u32).min(hi - lo);
            *img = recompress(img, q)?;
        }
        if s.uniform() < self.erasing.probability {
            erase(img, &self.erasing, &mut s, mix(seed, 2));
        }
        Ok(())
    }
}

/// torchvision's `_blend` on uint8: `ratio·a + (1 − ratio)·b` in f32 (the two products given),
/// clamped, truncated.
fn blend(a: f32, b: f32) -> u8 {
    (a + b).clamp(0.0, 255.0) as u8
}

/// `f32(k)·v` for every byte `v`: each product rounded once, as torch's f32 product is.
fn products(k: f32) -> [f32; 256] {
    std::array::from_fn(|v| k * v as f32)
}

/// torchvision's `rgb_to_grayscale` on uint8: ITU-R 601-2 luma in f32, truncated to a byte.
fn gray(p: &[u8]) -> u8 {
    (0.2989f32 * p[0] as f32 + 0.587f32 * p[1] as f32 + 0.114f32 * p[2] as f32) as u8
}

/// `adjust_brightness`: a blend with black (a table: the output depends on the byte alone).
pub fn brightness(img: &mut Rgb, f: f64) {
    let a = products(f as f32);
    let lut: [u8; 256] = std::array::from_fn(|v| blend(a[v], 0.0));
    img.data.iter_mut().for_each(|v| *v = lut[*v as usize]);
}

/// `adjust_contrast`: a blend with the mean of the (byte) grayscale image.
pub fn contrast(img: &mut Rgb, f: f64) {
    // Integer sums are exact: the same mean as torch's f32 one for up to 2²⁴/255 pixels.
    let sum: u64 = img.data.chunks_exact(3).map(|p| gray(p) as u64).sum();
    let mean = sum as f32 / (img.width * img.height).max(1) as f32;
    let (a, b) = (products(f as f32), (1.0 - f) as f32 * mean);
    let lut: [u8; 256] = std::array::from_fn(|v| blend(a[v], b));
    img.data.iter_mut().for_each(|v| *v = lut[*v as usize]);
}

/// `adjust_saturation`: a blend with each pixel's (byte) grayscale.
pub fn saturation(img: &mut Rgb, f: f64) {
    let (r, m) = (f as f32, (1.0 - f) as f32);
    for p in img.data.chunks_exact_mut(3) {
        let g = m * gray(p) as f32;
        p.iter_mut().for_each(|v| *v = blend(r * *v as f32, g));
    }
}

/// Reflects index `i` into `0..n` without repeating the edge (`n ≥ 2`, `|overhang| < n`).
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    (if i < 0 {
        -i
    } else if i >= n {
        2 * (n - 1) - i
    } else {
        i
    }) as usize
}

/// Separable Gaussian blur of radius ⌈3σ⌉ with torchvision's kernel (`exp(−x²/2σ²)` at the
/// integer offsets, normalised, in f32) and reflected borders, rounded half to even as
/// torchvision rounds its uint8 result. Each sum runs over the taps in order, whole rows at
/// a time (contiguous, so the compiler vectorises them).
pub fn gaussian_blur(img: &mut Rgb, sigma: f64) {
    let (w, h) = (img.width, img.height);
    let radius = ((3.0 * sigma).ceil() as usize).min(w.min(h).saturating_sub(1));
    if radius == 0 {
        return;
    }
    let sigma = sigma as f32;
    let pdf: Vec<f32> = (0..=2 * radius).map(|k| (-0.5 * ((k as f32 - radius as f32) / sigma).powi(2)).exp()).collect();
    let total: f32 = pdf.iter().sum();
    let kernel: Vec<f32> = pdf.iter().map(|p| p / total).collect();
    let (r, row) = (radius as isize, w * 3);
    let mut padded = vec![0f32; (w + 2 * radius) * 3];
    let mut rows = vec![0f32; h * row];
    for y in 0..h {
        for (x, px) in padded.chunks_exact_mut(3).enumerate() {
            let sx = reflect(x as isize - r, w);
            px.iter_mut().zip(&img.data[(y * w + sx) * 3..][..3]).for_each(|(d, &s)| *d = s as f32);
        }
        let out = &mut rows[y * row..][..row];
        for (k, &wt) in kernel.iter().enumerate() {
            out.iter_mut().zip(&padded[k * 3..][..row]).for_each(|(o, &p)| *o += wt * p);
        }
    }
    let mut acc = vec![0f32; row];
    for y in 0..h {
        acc.fill(0.0);
        for (k, &wt) in kernel.iter().enumerate() {
            let src = &rows[reflect(y as isize + k as isize - r, h) * row..][..row];
            acc.iter_mut().zip(src).for_each(|(a, &s)| *a += wt * s);
        }
        let out = &mut img.data[y * row..][..row];
        out.iter_mut().zip(&acc).for_each(|(o, &a)| *o = a.round_ties_even().clamp(0.0, 255.0) as u8);
    }
}

/// The image encoded as a baseline 4:2:0 JPEG of `quality` by libjpeg-turbo (PIL's
/// `save(format='JPEG', quality=q)` settings) and decoded again.
pub fn recompress(img: &Rgb, quality: u32) -> Result<Rgb> {
    let bytes = encode_jpeg(img, quality.min(100) as u8).map_err(|e| crate::Error(format!("photometric.jpeg: {e}")))?;
    decode(&bytes, "photometric.jpeg: the recompressed image", Dims::AtMost(img.width.max(img.height)))
}

/// torchvision RandomErasing's `get_params` and fill, drawn from `s` (noise from `noise`).
fn erase(img: &mut Rgb, e: &Erasing, s: &mut Stream, noise: u64) {
    let (w, h) = (img.width, img.height);
    let area = (w * h) as f64;
    let (lr0, lr1) = (e.ratio[0].ln(), e.ratio[1].ln());
    for _ in 0..ERASE_TRIES {
        let target = area * (e.scale[0] + (e.scale[1] - e.scale[0]) * s.uniform());
        let aspect = (lr0 + (lr1 - lr0) * s.uniform()).exp();
        let eh = (target * aspect).sqrt().round() as usize;
        let ew = (target / aspect).sqrt().round() as usize;
        if !(eh < h && ew < w) {
            continue;
        }
        let top = ((s.uniform() * (h - eh + 1) as f64) as usize).min(h - eh);
        let left = ((s.uniform() * (w - ew + 1) as f64) as usize).min(w - ew);
        for y in top..top + eh {
            for x in left..left + ew {
                let p = &mut img.data[(y * w + x) * 3..][..3];
                for c in 0..3 {
                    p[c] = match e.fill {
                        Fill::Constant(v) => v[c],
                        Fill::Random => {
                            let z = normal(noise, ((y * w + x) * 3 + c) as u64);
                            (127.5 + 127.5 * z).round().clamp(0.0, 255.0) as u8
                        }
                    };
                }
            }
        }
        return;
    }
}

/// The loader's hook with photometric augmentation: `first` (the mask synthesizers, if any)
/// on the sample's seed, then the photometric ops on their own stream of it, so turning the
/// jitter on changes no mask and the same seed gives the same batch whatever the threads.
pub struct WithPhotometric {
    pub first: Option<Arc<dyn Augment>>,
    pub photometric: Photometric,
}

impl WithPhotometric {
    /// The loader's hook: `first` alone without `photometric` (batches as without the option,
    /// bit for bit), else both; the photometric config checked first.
    pub fn hook(first: Option<Arc<dyn Augment>>, photometric: Option<Photometric>) -> Result<Option<Arc<dyn Augment>>> {
        let Some(photometric) = photometric else { return Ok(first) };
        photometric.validate()?;
        Ok(Some(Arc::new(WithPhotometric { first, photometric })))
    }
}

impl Augment for WithPhotometric {
    fn apply(&self, img: &mut Rgb, landmarks: Option<&[Point; 5]>, seed: u64) -> bool {
        let masked = self.first.as_ref().is_some_and(|a| a.apply(img, landmarks, seed));
        // Only libjpeg-turbo failing on a valid image (out of memory) lands here; the worker
        // stops and the loader reports it.
        if let Err(e) = self.photometric.apply(img, mix(seed, STREAM)) {
            panic!("{}", e.0);
        }
        masked
    }
}
