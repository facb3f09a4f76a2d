//! Photometric augmentation: each op against its reference (torchvision's functional ops and
//! PIL's JPEG save+reopen, from test/fixtures/make_photometric_fixtures.py), erasing's
//! rectangles within their ranges, determinism by seed and across loader threads, the
//! identity at probability 0, and the config's checks.

use maskfr_core::random::uniform;
use maskfr_io::align::Point;
use maskfr_io::image_codec::{decode, encode_png, Dims, Rgb};
use maskfr_io::loader::{epoch, Augment, LoaderConfig, Sample, Source};
use maskfr_io::photometric::{self, Blur, Erasing, Fill, Jitter, Jpeg, Photometric, WithPhotometric};
use maskfr_io::Result;
use std::path::PathBuf;
use std::sync::Arc;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/photometric")
}

fn png(name: &str) -> Rgb {
    let path = fixtures().join(name);
    decode(&std::fs::read(&path).unwrap(), &path.display().to_string(), Dims::AtMost(4096)).unwrap()
}

/// `(input, op, value, output)` of every fixture case.
fn cases() -> Vec<(String, String, f64, String)> {
    let text = std::fs::read_to_string(fixtures().join("cases.json")).unwrap();
    // One flat object a case, written by json.dumps(indent=1): read its four fields by name.
    let field = |obj: &str, key: &str| -> String {
        let at = obj.find(&format!("\"{key}\": ")).unwrap() + key.len() + 4;
        obj[at..].split([',', '\n']).next().unwrap().trim().trim_matches('"').to_string()
    };
    text.split('{')
        .skip(1)
        .map(|o| (field(o, "input"), field(o, "op"), field(o, "value").parse().unwrap(), field(o, "output")))
        .collect()
}

/// How many bytes differ and the largest difference.
fn diff(a: &Rgb, b: &Rgb) -> (usize, u8) {
    assert_eq!((a.width, a.height), (b.width, b.height));
    a.data.iter().zip(&b.data).fold((0, 0), |(n, m), (x, y)| (n + (x != y) as usize, m.max(x.abs_diff(*y))))
}

fn ours(op: &str, img: &Rgb, v: f64) -> Rgb {
    let mut out = img.clone();
    match op {
        "brightness" => photometric::brightness(&mut out, v),
        "contrast" => photometric::contrast(&mut out, v),
        "saturation" => photometric::saturation(&mut out, v),
        "blur" => photometric::gaussian_blur(&mut out, v),
        "jpeg" => out = photometric::recompress(img, v as u32).unwrap(),
        _ => panic!("unknown op {op} in cases.json"),
    }
    out
}

#[test]
fn colour_jitter_and_jpeg_equal_torchvision_and_pil_blur_within_one() {
    let all = cases();
    assert_eq!(all.len(), 42, "cases.json as make_photometric_fixtures.py writes it");
    for (input, op, v, output) in all {
        let (img, want) = (png(&input), png(&output));
        let got = ours(&op, &img, v);
        let (differ, max) = diff(&got, &want);
        if op == "blur" {
            // Separable f32 passes against torchvision's 2-D f32 conv (equal to the bit on these
            // fixtures here): another summation order may land a sum on the other side of .5,
            // never further (OpenCV's lies that far from torchvision, see the fixture script).
            assert!(max <= 1, "{output}: blur off by {max}");
            assert!(differ * 100 <= got.data.len(), "{output}: {differ} of {} bytes off by one", got.data.len());
        } else {
            assert_eq!((differ, max), (0, 0), "{output}: {op} {v} differs from the reference");
        }
        if v != 1.0 {
            assert_ne!(got, img, "{output}: the op changed nothing");
        }
    }
}

/// A random image, smooth enough to compress and blur like a photograph.
fn random_image(w: usize, h: usize, seed: u64) -> Rgb {
    let data = (0..w * h * 3)
        .map(|i| {
            let (x, y, c) = ((i / 3) % w, i / 3 / w, i % 3);
            (((x * 5 + y * 3 + c * 40) % 200) as f64 + 55.0 * uniform(seed, i as u64)) as u8
        })
        .collect();
    Rgb { width: w, height: h, data }
}

fn only_erasing(probability: f64, fill: Fill) -> Photometric {
    let off = Photometric::default();
    let none = Jitter { probability: 0.0, ..off.brightness };
    Photometric {
        brightness: none,
        contrast: none,
        saturation: none,
        blur: Blur { probability: 0.0, ..off.blur },
        jpeg: Jpeg { probability: 0.0, ..off.jpeg },
        erasing: Erasing { probability, scale: [0.02, 0.33], ratio: [0.3, 3.3], fill },
    }
}

/// The bounding box of the bytes that changed: (top, left, height, width, changed pixels).
fn changed_box(a: &Rgb, b: &Rgb) -> Option<(usize, usize, usize, usize, usize)> {
    let w = a.width;
    let px: Vec<usize> = (0..w * a.height).filter(|&p| a.data[p * 3..p * 3 + 3] != b.data[p * 3..p * 3 + 3]).collect();
    let (x0, x1) = (px.iter().map(|p| p % w).min()?, px.iter().map(|p| p % w).max()?);
    let (y0, y1) = (px.iter().map(|p| p / w).min()?, px.iter().map(|p| p / w).max()?);
    Some((y0, x0, y1 - y0 + 1, x1 - x0 + 1, px.len()))
}

#[test]
fn erasing_draws_rectangles_within_scale_and_ratio() {
    let (w, h) = (64, 48);
    let area = (w * h) as f64;
    let p = only_erasing(1.0, Fill::Constant([255, 0, 255]));
    let mut shares = vec![];
    for seed in 0..300 {
        let img = random_image(w, h, 1000 + seed);
        let mut out = img.clone();
        p.apply(&mut out, seed).unwrap();
        let Some((top, left, eh, ew, n)) = changed_box(&img, &out) else { continue };
        assert_eq!(n, eh * ew, "seed {seed}: the erased pixels fill their box");
        for y in top..top + eh {
            for x in left..left + ew {
                assert_eq!(&out.data[(y * w + x) * 3..][..3], &[255, 0, 255], "seed {seed}: the constant fill");
            }
        }
        // h and w are rounded from √(area·ratio) and √(area/ratio): each within half a pixel.
        let slack = (eh + ew + 1) as f64 / 2.0 + 0.25;
        assert!((0.02 * area - slack..=0.33 * area + slack).contains(&((eh * ew) as f64)), "seed {seed}: {eh}×{ew}");
        let r = eh as f64 / ew as f64;
        let rs = 1.0 + 1.0 / eh.min(ew) as f64;
        assert!(r >= 0.3 / rs && r <= 3.3 * rs, "seed {seed}: ratio {r}");
        shares.push((eh * ew) as f64 / area);
    }
    assert!(shares.len() >= 280, "ten tries nearly always fit: {} of 300", shares.len());
    let (lo, hi) = shares.iter().fold((1f64, 0f64), |(a, b), &s| (a.min(s), b.max(s)));
    assert!(lo < 0.05 && hi > 0.28, "shares spread over the range: {lo}..{hi}");

    let half = only_erasing(0.5, Fill::Random);
    let img = random_image(w, h, 5);
    let mut noise = vec![];
    let erased = (0..400)
        .filter(|&seed| {
            let mut out = img.clone();
            half.apply(&mut out, seed).unwrap();
            let b = changed_box(&img, &out);
            if let Some((top, left, eh, ew, _)) = b {
                (top..top + eh)
                    .for_each(|y| noise.extend_from_slice(&out.data[(y * w + left) * 3..(y * w + left + ew) * 3]));
            }
            b.is_some()
        })
        .count();
    assert!((160..240).contains(&erased), "probability 0.5: {erased} of 400 erased");
    let mean = noise.iter().map(|&v| v as f64).sum::<f64>() / noise.len() as f64;
    let sd = (noise.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / noise.len() as f64).sqrt();
    assert!(
        (mean - 127.5).abs() < 3.0 && sd > 70.0,
        "random fill: N(0,1) in the normalised space, clamped: mean {mean} sd {sd}"
    );
}

fn everything() -> Photometric {
    let d = Photometric::default();
    Photometric {
        blur: Blur { probability: 0.5, ..d.blur },
        jpeg: Jpeg { probability: 0.5, quality: [10, 60] },
        erasing: Erasing { probability: 0.5, fill: Fill::Random, ..d.erasing },
        ..d
    }
}

#[test]
fn the_same_seed_gives_the_same_pixels() {
    let img = random_image(40, 40, 3);
    let run = |p: &Photometric, seed| {
        let mut out = img.clone();
        p.apply(&mut out, seed).unwrap();
        out
    };
    let p = everything();
    let outs: Vec<Rgb> = (0..20).map(|s| run(&p, s)).collect();
    assert!((0..20).all(|s| run(&p, s) == outs[s as usize]), "same seed, same pixels");
    assert!(outs.iter().all(|o| *o != img), "brightness/contrast/saturation always apply by default");
    let distinct: std::collections::HashSet<&Vec<u8>> = outs.iter().map(|o| &o.data).collect();
    assert_eq!(distinct.len(), 20, "other seeds, other draws");

    let zero = Photometric {
        brightness: Jitter { probability: 0.0, ..p.brightness },
        contrast: Jitter { probability: 0.0, ..p.contrast },
        saturation: Jitter { probability: 0.0, ..p.saturation },
        blur: Blur { probability: 0.0, ..p.blur },
        jpeg: Jpeg { probability: 0.0, ..p.jpeg },
        erasing: Erasing { probability: 0.0, ..p.erasing },
    };
    assert!((0..50).all(|s| run(&zero, s) == img), "every probability 0: the identity");
}

/// In-memory PNG samples of random pixels.
struct Images(Vec<Vec<u8>>);

impl Source for Images {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn read(&self, i: usize) -> Result<Sample> {
        Ok(Sample { label: i as i32 % 4, bytes: self.0[i].clone(), landmarks: None })
    }
    fn describe(&self, i: usize) -> String {
        format!("image {i}")
    }
    fn name(&self) -> String {
        "images".into()
    }
}

/// A stand-in for the mask synthesizers: a seed-dependent patch on half the samples.
struct Patch;

impl Augment for Patch {
    fn apply(&self, img: &mut Rgb, _: Option<&[Point; 5]>, seed: u64) -> bool {
        if seed & 1 == 0 {
            return false;
        }
        img.data[..img.width * 3 * 4].fill((seed >> 8) as u8);
        true
    }
}

fn batches(aug: Option<Arc<dyn Augment>>, threads: usize) -> Vec<(Vec<f32>, Vec<bool>)> {
    let src: Arc<dyn Source> =
        Arc::new(Images((0..30).map(|i| encode_png(&random_image(24, 24, i)).unwrap()).collect()));
    let cfg = LoaderConfig {
        batch: 4,
        seed: 11,
        rank: 0,
        world: 1,
        shuffle: true,
        flip: true,
        size: 24,
        prefetch: 2,
        threads,
        skip_corrupt: false,
        max_corrupt_share: 0.0,
    };
    epoch(src, aug, &cfg, 2, 0).unwrap().map(|b| b.unwrap()).map(|b| (b.images, b.masked)).collect()
}

#[test]
fn loader_batches_are_deterministic_and_unchanged_without_it() {
    let patch: Option<Arc<dyn Augment>> = Some(Arc::new(Patch));
    let plain = batches(patch.clone(), 1);
    assert!(
        WithPhotometric::hook(patch.clone(), None).unwrap().is_some_and(|h| Arc::ptr_eq(&h, patch.as_ref().unwrap())),
        "absent: the mask hook itself"
    );
    assert!(WithPhotometric::hook(None, None).unwrap().is_none());
    let zero = Photometric {
        jpeg: Jpeg { probability: 0.0, ..Photometric::default().jpeg },
        ..only_erasing(0.0, Fill::Random)
    };
    assert_eq!(
        batches(WithPhotometric::hook(patch.clone(), Some(zero)).unwrap(), 2),
        plain,
        "probabilities 0: bit-identical batches, the same masks"
    );

    let jittered = batches(WithPhotometric::hook(patch.clone(), Some(everything())).unwrap(), 1);
    assert_eq!(
        batches(WithPhotometric::hook(patch.clone(), Some(everything())).unwrap(), 3),
        jittered,
        "whatever the threads"
    );
    assert_ne!(jittered, plain);
    assert!(jittered.iter().zip(&plain).all(|(j, p)| j.1 == p.1), "the same samples masked");
    assert!(jittered.iter().flat_map(|b| &b.0).all(|v| (-1.0..=1.0).contains(v)));

    let bad = Photometric { blur: Blur { probability: 0.5, sigma: [0.0, 1.0] }, ..everything() };
    let e = WithPhotometric::hook(None, Some(bad)).err().unwrap().0;
    assert!(e.contains("photometric.blur.sigma"), "{e}");
}

#[test]
fn every_field_is_checked_by_name() {
    let d = Photometric::default();
    assert!(d.validate().is_ok());
    assert!(everything().validate().is_ok());
    let j = |probability, range| Jitter { probability, range };
    let wrong: Vec<(Photometric, &str)> = vec![
        (Photometric { brightness: j(1.5, [0.9, 1.1]), ..d }, "photometric.brightness.probability"),
        (Photometric { brightness: j(f64::NAN, [0.9, 1.1]), ..d }, "photometric.brightness.probability"),
        (Photometric { contrast: j(1.0, [1.2, 0.8]), ..d }, "photometric.contrast.range"),
        (Photometric { saturation: j(1.0, [-0.1, 1.0]), ..d }, "photometric.saturation.range"),
        (Photometric { saturation: j(1.0, [0.5, f64::NAN]), ..d }, "photometric.saturation.range"),
        (Photometric { blur: Blur { probability: -0.1, sigma: [0.1, 2.0] }, ..d }, "photometric.blur.probability"),
        (Photometric { blur: Blur { probability: 0.1, sigma: [0.1, 50.0] }, ..d }, "photometric.blur.sigma"),
        (Photometric { jpeg: Jpeg { probability: 0.5, quality: [0, 20] }, ..d }, "photometric.jpeg.quality"),
        (Photometric { jpeg: Jpeg { probability: 0.5, quality: [30, 101] }, ..d }, "photometric.jpeg.quality"),
        (Photometric { jpeg: Jpeg { probability: 2.0, quality: [30, 40] }, ..d }, "photometric.jpeg.probability"),
        (Photometric { erasing: Erasing { scale: [0.0, 0.3], ..d.erasing }, ..d }, "photometric.erasing.scale"),
        (Photometric { erasing: Erasing { scale: [0.1, 1.3], ..d.erasing }, ..d }, "photometric.erasing.scale"),
        (Photometric { erasing: Erasing { ratio: [3.0, 0.3], ..d.erasing }, ..d }, "photometric.erasing.ratio"),
        (
            Photometric { erasing: Erasing { probability: f64::INFINITY, ..d.erasing }, ..d },
            "photometric.erasing.probability",
        ),
    ];
    for (p, name) in wrong {
        let e = p.validate().err().unwrap_or_else(|| panic!("{name}: accepted")).0;
        assert!(e.starts_with(name), "{name}: {e}");
    }
}
