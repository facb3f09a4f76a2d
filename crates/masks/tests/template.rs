//! Both synthesizers on aligned and non-aligned faces: nose tip and mouth corners covered,
//! eye centres never; template masks also on heads turned ±30°, their straps drawn and
//! clear of the eyes, their choices (shapes, colours, patterns, user textures) honoured;
//! homography and key-point fits exact on known transforms; deterministic by seed.

use maskfr_core::random::uniform;
use maskfr_io::image_codec::{encode_png, Rgb};
use maskfr_masks::geometry::{face_keypoints, Homography, Point, ARCFACE_112};
use maskfr_masks::template::{choose, draw, Choice, SHAPES};
use maskfr_masks::texture::Pattern;
use maskfr_masks::{MaskShape, RenderSynth, TemplateSynth, Texture};
use std::sync::Arc;

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

/// A noisy image (random pixels): nothing a mask draws can leave it by chance.
fn noise(w: usize, h: usize, seed: u64) -> Rgb {
    Rgb { width: w, height: h, data: (0..w * h * 3).map(|i| (uniform(seed, i as u64) * 256.0) as u8).collect() }
}

/// The five landmarks of a head turned by `yaw` degrees about the vertical (orthographic
/// view): the ArcFace template's points with a mean face's depths in its pixels (eyes 38,
/// nose tip 54, mouth corners 35, from the head's axis), then shifted by `at`.
fn turned(yaw: f64, at: Point) -> [Point; 5] {
    let depth = [38.0, 38.0, 54.0, 35.0, 35.0];
    let (c, s) = (yaw.to_radians().cos(), yaw.to_radians().sin());
    std::array::from_fn(|i| {
        let [x, y] = ARCFACE_112[i];
        [at[0] + (x - 56.0) * c + depth[i] * s, at[1] + y]
    })
}

fn dist(a: Point, b: Point) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

/// Checks one template mask on `lm`: nose tip and mouth corners covered, nothing drawn
/// within 0.2 eye distances of either eye centre (mask, its shadow or straps). Returns the
/// pixels it changed.
fn check_template(c: &Choice, lm: &[Point; 5], what: &str) -> Vec<Point> {
    check_template_on(&noise(200, 170, 7), c, lm, what)
}

fn check_template_on(img0: &Rgb, c: &Choice, lm: &[Point; 5], what: &str) -> Vec<Point> {
    let mut img = img0.clone();
    draw(&mut img, lm, c);
    for (part, p) in [("nose tip", lm[2]), ("left mouth corner", lm[3]), ("right mouth corner", lm[4])] {
        assert_ne!(px(&img, p), px(img0, p), "{what}: {part} not covered");
    }
    let changed: Vec<Point> = (0..img.height)
        .flat_map(|y| (0..img.width).map(move |x| (x, y)))
        .filter(|&(x, y)| img.data[(y * img.width + x) * 3..][..3] != img0.data[(y * img.width + x) * 3..][..3])
        .map(|(x, y)| [x as f64 + 0.5, y as f64 + 0.5])
        .collect();
    let clear = 0.2 * dist(lm[0], lm[1]);
    for (eye, e) in [("left eye", lm[0]), ("right eye", lm[1])] {
        if let Some(p) = changed.iter().find(|p| dist(**p, e) < clear) {
            panic!("{what}: drew at {p:?}, {:.1} px from the {eye} (at least {clear:.1})", dist(*p, e));
        }
    }
    changed
}

#[test]
fn template_masks_cover_turned_heads_and_keep_clear_of_the_eyes() {
    for yaw in [-30.0, -15.0, 0.0, 15.0, 30.0] {
        let lm = turned(yaw, [90.0, 20.0]);
        for (k, &shape) in SHAPES.iter().enumerate() {
            for seed in 0..4 {
                let c = Choice { shape, ..choose(seed * 5 + k as u64) };
                check_template(&c, &lm, &format!("{shape:?} seed {seed}, yaw {yaw}°"));
            }
        }
    }
    // Turned, rolled and scaled together, and the default mix of masks.
    let f = similarity(-0.25, 1.2, [30.0, -5.0]);
    for seed in 0..30 {
        let lm = turned([-30.0, 30.0][seed as usize % 2], [60.0, 20.0]).map(&f);
        check_template(&choose(seed), &lm, &format!("seed {seed}, turned, rolled and scaled"));
    }
}

#[test]
fn straps_run_from_the_mask_toward_both_ears() {
    for (k, &shape) in SHAPES.iter().enumerate() {
        let lm = turned(0.0, [90.0, 20.0]);
        let kp = face_keypoints(&lm);
        let changed = check_template(&choose(k as u64), &lm, &format!("{shape:?}"));
        // The mask (with its cartridges and shadow) ends within 7 px of the cheek key points;
        // straps go on toward the ears, between eye and chin height.
        let rows = lm[0][1]..kp[5][1];
        let left = changed.iter().filter(|p| p[0] < kp[0][0] - 7.0 && rows.contains(&p[1])).count();
        let right = changed.iter().filter(|p| p[0] > kp[1][0] + 7.0 && rows.contains(&p[1])).count();
        assert!(left >= 6 && right >= 6, "{shape:?}: strap pixels left {left}, right {right}");
    }
}

#[test]
fn choices_restrict_what_is_drawn_and_apply_says_what_it_drew() {
    let synth = TemplateSynth {
        shapes: Some(vec![MaskShape::Cloth, MaskShape::Gas]),
        colors: Some(vec![[0.2, 0.4, 0.8]]),
        patterns: Some(vec![Pattern::Dots]),
        textures: vec![],
    };
    synth.check().unwrap();
    let mut kinds = std::collections::HashSet::new();
    for seed in 0..40 {
        let mut img = noise(112, 112, seed);
        let info = synth.apply(&mut img, &ARCFACE_112, seed);
        assert!(["cloth", "gas"].contains(&info.kind), "seed {seed}: drew {}", info.kind);
        assert_eq!((info.color, info.pattern.as_str()), ([51, 102, 204], "dots"), "seed {seed}");
        // Both colours are the one asked for, so the printed dots do not show: blue fabric.
        let p = px(&img, ARCFACE_112[2]);
        assert!(p[2] as i32 > p[0] as i32 + 30, "seed {seed}: nose pixel {p:?} is not the blue asked for");
        kinds.insert(info.kind);
    }
    assert_eq!(kinds.len(), 2, "both asked shapes drawn");
    // The default synthesizer reports its own choice.
    for seed in 0..20 {
        let c = choose(seed);
        let info = TemplateSynth::default().apply(&mut noise(112, 112, seed), &ARCFACE_112, seed);
        assert_eq!((info.kind, info.pattern.as_str()), (c.shape.name(), c.fabric.pattern.name()));
        assert_eq!(info.color, c.colors[0].map(|x| (x * 255.0).round() as u8));
    }
    for (bad, what) in [
        (TemplateSynth { shapes: Some(vec![]), ..TemplateSynth::default() }, "shapes"),
        (TemplateSynth { patterns: Some(vec![]), ..TemplateSynth::default() }, "patterns"),
        (TemplateSynth { colors: Some(vec![]), ..TemplateSynth::default() }, "colours"),
        (TemplateSynth { colors: Some(vec![[0.5, f64::NAN, 0.5]]), ..TemplateSynth::default() }, "NaN"),
    ] {
        let e = bad.check().unwrap_err().to_string();
        assert!(e.contains(what) || (what == "NaN" && e.contains("outside [0, 1]")), "{what}: {e}");
    }
}

/// A fresh folder under the system's temporary one.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("maskfr-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fabric swatch around `rgb`, with random texture.
fn swatch(rgb: [u8; 3], seed: u64) -> Vec<u8> {
    let (w, h) = (40, 30);
    let data =
        (0..w * h * 3).map(|i| (rgb[i % 3] as f64 + 30.0 * (uniform(seed, i as u64) - 0.5)).clamp(0.0, 255.0) as u8);
    encode_png(&Rgb { width: w, height: h, data: data.collect() }).unwrap()
}

#[test]
fn a_texture_folder_prints_its_textures_and_a_bad_file_is_named() {
    let dir = scratch("textures");
    std::fs::write(dir.join("green.png"), swatch([30, 200, 40], 1)).unwrap();
    std::fs::write(dir.join("magenta.png"), swatch([210, 30, 190], 2)).unwrap();
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
    let textures: Vec<Arc<Texture>> = Texture::load_dir(&dir).unwrap().into_iter().map(Arc::new).collect();
    assert_eq!(textures.len(), 2);
    let synth = TemplateSynth { textures, ..TemplateSynth::default() };
    let mut seen = std::collections::HashSet::new();
    for seed in 0..30 {
        let mut img = noise(112, 112, seed);
        let info = synth.apply(&mut img, &ARCFACE_112, seed);
        let p = px(&img, ARCFACE_112[2]).map(|x| x as i32);
        match info.pattern.as_str() {
            "texture:green.png" => {
                assert!(p[1] > p[0] + 40 && p[1] > p[2] + 40, "seed {seed} ({}): nose pixel {p:?}", info.kind);
                assert!(info.color[1] > 150 && info.color[0] < 80, "mean colour {:?}", info.color);
            }
            "texture:magenta.png" => {
                assert!(p[0] > p[1] + 40 && p[2] > p[1] + 40, "seed {seed} ({}): nose pixel {p:?}", info.kind);
            }
            other => panic!("seed {seed}: pattern {other}"),
        }
        seen.insert(info.pattern);
    }
    assert_eq!(seen.len(), 2, "both textures printed");
    std::fs::write(dir.join("broken.png"), b"\x89PNG but not really").unwrap();
    let e = Texture::load_dir(&dir).unwrap_err().to_string();
    assert!(e.contains("broken.png"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn same_choice_same_pixels_with_textures_and_on_turned_heads() {
    let dir = scratch("texture-seed");
    std::fs::write(dir.join("t.png"), swatch([120, 90, 60], 3)).unwrap();
    let textures = Texture::load_dir(&dir).unwrap().into_iter().map(Arc::new).collect();
    std::fs::remove_dir_all(&dir).unwrap();
    let synth = TemplateSynth { textures, ..TemplateSynth::default() };
    let lm = turned(25.0, [40.0, 0.0]);
    let run = |seed| {
        let mut img = noise(112, 112, 1);
        let info = synth.apply(&mut img, &lm, seed);
        (img.data, info)
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9).0, run(10).0);
}

#[test]
fn a_black_and_white_photo_gets_a_grey_mask_and_a_colour_one_keeps_its_colour() {
    let red = TemplateSynth { colors: Some(vec![[0.8, 0.1, 0.1]]), ..TemplateSynth::default() };
    for seed in 0..10 {
        let grey = {
            let n = noise(112, 112, seed);
            Rgb { data: n.data.chunks(3).flat_map(|p| [p[0]; 3]).collect(), ..n }
        };
        let mut img = grey.clone();
        let info = red.apply(&mut img, &ARCFACE_112, seed);
        for (i, (p, q)) in img.data.chunks(3).zip(grey.data.chunks(3)).enumerate() {
            let spread = p.iter().max().unwrap() - p.iter().min().unwrap();
            assert!(spread <= 1, "seed {seed} ({}): pixel {i} is {p:?} (was {q:?}) on a grey photo", info.kind);
        }
        let mut img = noise(112, 112, seed);
        red.apply(&mut img, &ARCFACE_112, seed);
        let p = px(&img, ARCFACE_112[2]);
        assert!(p[0] as i32 > p[1] as i32 + 40, "seed {seed} ({}): nose pixel {p:?} on a colour photo", info.kind);
    }
}

/// A soft photo: smooth colour gradients only (as a small face enlarged).
fn soft(w: usize, h: usize) -> Rgb {
    let data = (0..h)
        .flat_map(|y| (0..w).flat_map(move |x| [90 + (x * 100 / w) as u8, 60 + (y * 120 / h) as u8, 110]))
        .collect();
    Rgb { width: w, height: h, data }
}

/// Mean |Laplacian| of the green channel over a box.
fn roughness(img: &Rgb, x0: usize, x1: usize, y0: usize, y1: usize) -> f64 {
    let g = |x: usize, y: usize| img.data[(y * img.width + x) * 3 + 1] as f64;
    let mut sum = 0.0;
    for y in y0..y1 {
        for x in x0..x1 {
            sum += (4.0 * g(x, y) - g(x - 1, y) - g(x + 1, y) - g(x, y - 1) - g(x, y + 1)).abs();
        }
    }
    sum / ((x1 - x0) * (y1 - y0)) as f64
}

#[test]
fn a_mask_is_no_sharper_than_its_photo() {
    // On a soft photo the mask (and a pixel round it) is blurred: still covering, still clear
    // of the eyes.
    for yaw in [-30.0, 0.0, 30.0] {
        let lm = turned(yaw, [90.0, 20.0]);
        for (k, &shape) in SHAPES.iter().enumerate() {
            for seed in 0..3 {
                let c = Choice { shape, ..choose(seed * 5 + k as u64) };
                check_template_on(
                    &soft(200, 170),
                    &c,
                    &lm,
                    &format!("{shape:?} seed {seed}, yaw {yaw}° on a soft photo"),
                );
            }
        }
    }
    // The same pixels under the mask, the photo soft or (by a checkerboard far above the
    // face) sharp: the mask is smoother on the soft one.
    let flat = Rgb { width: 112, height: 112, data: vec![128; 112 * 112 * 3] };
    let mut sharp = flat.clone();
    for i in 0..112 * 12 {
        let v = if (i % 112 + i / 112) % 2 == 0 { 20 } else { 235 };
        sharp.data[i * 3..i * 3 + 3].copy_from_slice(&[v; 3]);
    }
    for seed in 0..10 {
        let (mut a, mut b) = (flat.clone(), sharp.clone());
        let c = choose(seed);
        draw(&mut a, &ARCFACE_112, &c);
        draw(&mut b, &ARCFACE_112, &c);
        let (ra, rb) = (roughness(&a, 40, 72, 70, 100), roughness(&b, 40, 72, 70, 100));
        assert!(
            ra < 0.8 * rb,
            "seed {seed} ({:?}): roughness {ra:.2} on the soft photo, {rb:.2} on the sharp one",
            c.shape
        );
    }
}
