//! Both synthesizers on real photographs (test/fixtures/mask_photos, written by
//! make_mask_photo_fixtures.py: eleven faces, yaw from −55° to +51°, six turned 18° or more):
//! every template shape and the renderer's full and half masks, many seeds, on each face's
//! own crop with its landmarks, on its ArcFace 112² crop with the landmarks moved there, and
//! on that crop with ArcFace's template points (how a dataset without landmarks is masked).
//! Nose tip (full masks) and mouth corners must be at least half covered ([`COVERED`]);
//! the eyes must keep every pixel of their centre's 3×3.

mod photo_fixtures;

use maskfr_io::image_codec::Rgb;
use maskfr_masks::{MaskInfo, MaskShape, Point, RenderSynth, TemplateSynth, ARCFACE_112};
use photo_fixtures::photos;

/// A point counts as covered when it moved by at least this much in one channel (0–255), on
/// the photo or on the photo with every byte shifted by 128: a mask's colour may match the
/// skin under it on one of them, never on both (they are 128 apart), so this asks for half
/// opacity or more, whatever the mask's colour.
const COVERED: u8 = 32;
const TEMPLATE_SEEDS: u64 = 8;
const RENDER_SEEDS: u64 = 12;
const SHAPES: [MaskShape; 5] = [MaskShape::Surgical, MaskShape::N95, MaskShape::Kn95, MaskShape::Cloth, MaskShape::Gas];

fn px(img: &Rgb, x: usize, y: usize) -> [u8; 3] {
    let i = (y * img.width + x) * 3;
    [img.data[i], img.data[i + 1], img.data[i + 2]]
}

fn pixel_of(p: Point) -> (usize, usize) {
    (p[0].floor() as usize, p[1].floor() as usize)
}

fn moved(a: &Rgb, b: &Rgb, p: Point) -> u8 {
    let (x, y) = pixel_of(p);
    let (u, v) = (px(a, x, y), px(b, x, y));
    (0..3).map(|c| u[c].abs_diff(v[c])).max().unwrap()
}

fn eye_untouched(a: &Rgb, b: &Rgb, p: Point) -> bool {
    let (x, y) = pixel_of(p);
    (y - 1..=y + 1).all(|y| (x - 1..=x + 1).all(|x| px(a, x, y) == px(b, x, y)))
}

type Synth = Box<dyn Fn(&mut Rgb, &[Point; 5], u64) -> MaskInfo>;

/// (what, synthesizer, seeds, whether it must cover the nose tip).
fn synths() -> Vec<(String, Synth, u64, bool)> {
    let mut out: Vec<(String, Synth, u64, bool)> = SHAPES
        .iter()
        .map(|&shape| {
            let t = TemplateSynth { shapes: Some(vec![shape]), ..Default::default() };
            let f: Synth = Box::new(move |img, lm, seed| t.apply(img, lm, seed));
            (format!("template {shape:?}"), f, TEMPLATE_SEEDS, true)
        })
        .collect();
    for (kind, half_share) in [("full", 0.0), ("half", 1.0)] {
        let r = RenderSynth { half_share, ..Default::default() };
        out.push((
            format!("renderer {kind}"),
            Box::new(move |img, lm, seed| r.apply(img, lm, seed)),
            RENDER_SEEDS,
            kind == "full",
        ));
    }
    out
}

/// The photo with every byte shifted by 128 (see [`COVERED`]).
fn shifted(img: &Rgb) -> Rgb {
    Rgb { data: img.data.iter().map(|v| v ^ 0x80).collect(), ..img.clone() }
}

/// Every synthesizer and seed on `img` with `lm`; the failures, one line each.
fn check(name: &str, img0: &Rgb, lm: &[Point; 5], failures: &mut Vec<String>) {
    // The shifted copy is masked only when a point moved too little on the photo.
    let img1 = shifted(img0);
    for (what, synth, seeds, nose) in synths() {
        for seed in 0..seeds {
            let masked = |base: &Rgb| {
                let mut img = base.clone();
                let info = synth(&mut img, lm, seed);
                (img, info)
            };
            let (m0, info) = masked(img0);
            let mut m1: Option<Rgb> = None;
            let mut covered = vec![("left mouth corner", lm[3]), ("right mouth corner", lm[4])];
            if nose {
                covered.push(("nose tip", lm[2]));
            }
            for (point, p) in covered {
                let mut d = moved(img0, &m0, p);
                if d < COVERED {
                    d = d.max(moved(&img1, m1.get_or_insert_with(|| masked(&img1).0), p));
                }
                if d < COVERED {
                    failures.push(format!("{name} {what} seed {seed} ({}): {point} moved {d} < {COVERED}", info.kind));
                }
            }
            for (point, p) in [("left eye", lm[0]), ("right eye", lm[1])] {
                if !eye_untouched(img0, &m0, p) {
                    failures.push(format!("{name} {what} seed {seed} ({}): {point} covered", info.kind));
                }
            }
        }
    }
}

fn report(failures: &[String], cases: usize) {
    assert!(
        failures.is_empty(),
        "{} of {cases} faces×masks failed:\n{}",
        failures.len(),
        failures[..failures.len().min(30)].join("\n")
    );
}

#[test]
fn photographs_are_covered_at_nose_and_mouth_and_never_at_the_eyes() {
    let photos = photos();
    assert_eq!(photos.len(), 22, "11 faces, each cropped and aligned");
    // The fixtures hold turned faces both ways (else the yaw claims below test nothing).
    assert!(photos.iter().any(|p| p.yaw <= -30.0) && photos.iter().any(|p| p.yaw >= 30.0));
    let mut failures = Vec::new();
    for p in &photos {
        check(&format!("{} (yaw {:+.0}°)", p.name, p.yaw), &p.img, &p.landmarks, &mut failures);
        if p.name.ends_with("_112.png") {
            // ArcFace's points are a frontal face's, whatever the photo's pose.
            check(&format!("{} with ArcFace's points", p.name), &p.img, &ARCFACE_112, &mut failures);
        }
    }
    report(&failures, photos.len() * 3 / 2);
}

#[test]
fn the_kind_asked_for_is_the_kind_drawn() {
    let p = &photos()[1];
    for shape in SHAPES {
        let t = TemplateSynth { shapes: Some(vec![shape]), ..Default::default() };
        for seed in 0..TEMPLATE_SEEDS {
            let kind = t.apply(&mut p.img.clone(), &p.landmarks, seed).kind;
            assert_eq!(kind, shape.name(), "TemplateSynth {{ shapes: [{shape:?}] }} seed {seed} drew a {kind} mask");
        }
    }
    for (half_share, want) in [(0.0, "full"), (1.0, "half")] {
        let r = RenderSynth { half_share, ..Default::default() };
        for seed in 0..RENDER_SEEDS {
            let kind = r.apply(&mut p.img.clone(), &p.landmarks, seed).kind;
            assert_eq!(kind, want, "RenderSynth {{ half_share: {half_share} }} seed {seed} drew a {kind} mask");
        }
    }
}
