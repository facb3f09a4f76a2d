//! Both synthesizers on aligned and non-aligned faces: nose tip and mouth corners covered,
//! eye centres never; homography and key-point fits exact on known transforms;
//! deterministic by seed.

use maskfr_io::image_codec::Rgb;
use maskfr_masks::geometry::{face_keypoints, Homography, Point, ARCFACE_112};
use maskfr_masks::template::{choose, draw, Choice, SHAPES};
use maskfr_masks::{RenderSynth, TemplateSynth};

fn gray(w: usize, h: usize) -> Rgb {
    Rgb { width: w, height: h, data: vec![128; w * h * 3] }
}

fn px(img: &Rgb, p: Point) -> [u8; 3] {
    let i = (p[1] as usize * img.width + p[0] as usize) * 3;
    [img.data[i], img.data[i + 1], img.data[i + 2]]
}

/// A white, solid mask of each shape: far from the gray face wherever it lands.
fn white(c: Choice) -> Choice {
    Choice { colors: [[1.0; 3]; 2], ..c }
}

type Masker = Box<dyn Fn(&mut Rgb, &[Point; 5])>;

/// Every way of masking a face: each template shape in white, and rendered masks.
fn maskers() -> Vec<(String, Masker)> {
    let mut out: Vec<(String, Masker)> = SHAPES
        .iter()
        .enumerate()
        .map(|(k, &shape)| {
            let f: Masker = Box::new(move |img, lm| draw(img, lm, &white(Choice { shape, ..choose(k as u64) })));
            (format!("{shape:?}"), f)
        })
        .collect();
    for seed in 0..4u64 {
        out.push((
            format!("rendered #{seed}"),
            Box::new(move |img, lm| {
                RenderSynth::default().apply(img, lm, seed);
            }),
        ));
    }
    out
}

fn check_coverage(img0: &Rgb, lm: &[Point; 5], name: &str) {
    for (what_mask, mask) in maskers() {
        let mut img = img0.clone();
        mask(&mut img, lm);
        for (what, p) in [("nose tip", lm[2]), ("left mouth corner", lm[3]), ("right mouth corner", lm[4])] {
            assert_ne!(px(&img, p), px(img0, p), "{name} {what_mask}: {what} not covered");
        }
        for (what, p) in [("left eye", lm[0]), ("right eye", lm[1])] {
            assert_eq!(px(&img, p), px(img0, p), "{name} {what_mask}: {what} covered");
        }
    }
}

#[test]
fn masks_cover_nose_and_mouth_and_never_the_eyes() {
    check_coverage(&gray(112, 112), &ARCFACE_112, "aligned");
}

/// A similarity (rotation `a`, scale `s`, shift) applied to points.
fn similarity(a: f64, s: f64, t: Point) -> impl Fn(Point) -> Point {
    move |p| [s * (a.cos() * p[0] - a.sin() * p[1]) + t[0], s * (a.sin() * p[0] + a.cos() * p[1]) + t[1]]
}

#[test]
fn non_aligned_faces_with_explicit_landmarks() {
    let f = similarity(0.3, 1.6, [70.0, 10.0]);
    let lm = ARCFACE_112.map(&f);
    check_coverage(&gray(260, 260), &lm, "rotated and scaled");
    // Key points follow the face exactly.
    for (a, b) in face_keypoints(&lm).iter().zip(face_keypoints(&ARCFACE_112).map(&f)) {
        assert!((a[0] - b[0]).abs() < 1e-9 && (a[1] - b[1]).abs() < 1e-9, "{a:?} vs {b:?}");
    }
}

#[test]
fn homography_fit_recovers_a_known_transform() {
    let h = Homography([1.2, 0.1, 5.0, -0.05, 0.9, 12.0, 0.0008, -0.0005, 1.0]);
    let src: Vec<Point> = [[4.0, 26.0], [96.0, 26.0], [50.0, 6.0], [9.0, 56.0], [91.0, 56.0], [50.0, 80.0]].to_vec();
    let dst: Vec<Point> = src.iter().map(|&p| h.apply(p)).collect();
    let fit = Homography::fit(&src, &dst);
    for p in [[0.0, 0.0], [100.0, 80.0], [37.0, 41.0]] {
        let (a, b) = (fit.apply(p), h.apply(p));
        assert!((a[0] - b[0]).abs() < 1e-8 && (a[1] - b[1]).abs() < 1e-8, "{a:?} vs {b:?}");
        let back = fit.inverse().apply(a);
        assert!((back[0] - p[0]).abs() < 1e-8 && (back[1] - p[1]).abs() < 1e-8);
    }
}

#[test]
fn same_seed_same_mask_and_seeds_vary() {
    let run = |seed| {
        let mut img = gray(112, 112);
        TemplateSynth::default().apply(&mut img, &ARCFACE_112, seed);
        img.data
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
    let render = |seed| {
        let mut img = gray(112, 112);
        RenderSynth::default().apply(&mut img, &ARCFACE_112, seed);
        img.data
    };
    assert_eq!(render(3), render(3));
    assert_ne!(render(3), render(4));
    let shapes: std::collections::HashSet<_> = (0..200).map(|s| format!("{:?}", choose(s).shape)).collect();
    let patterns: std::collections::HashSet<_> = (0..200).map(|s| format!("{:?}", choose(s).fabric.pattern)).collect();
    assert_eq!(shapes.len(), 5, "every shape is drawn");
    assert!(patterns.len() >= 10, "at least ten patterns are drawn, got {}", patterns.len());
}
