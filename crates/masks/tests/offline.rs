//! `maskfr mask`'s engine on each kind of input: the output keeps names, keys, headers, pairs
//! and other files; each image is masked as the pipeline draws it for its seed (checked
//! against an independent recomputation, pixel for pixel on PNGs), the sidecar says what was
//! drawn, the result does not depend on the thread count, and bad paths and names are refused.

use maskfr_core::random::{mix, uniform};
use maskfr_io::image_codec::{decode, encode_jpeg, encode_png, Dims, Rgb};
use maskfr_io::pack::{LandmarkSet, PackProgress};
use maskfr_io::recordio::{pack, unpack, Header, RecordFile, RecordWriter};
use maskfr_io::verification_bin::{BinWriter, VerificationBin};
use maskfr_masks::offline::sidecar::{line, Key};
use maskfr_masks::offline::{bad_list_path, mask_dataset, sidecar_path, OfflineConfig, OfflineSummary};
use maskfr_masks::{MaskChoices, MaskInfo, MaskPipeline, Point, Synthesizers, ARCFACE_112};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "maskfr-offline-{}-{name}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A random smooth face-sized image (a gradient plus noise: not flat, not zeros).
fn image(side: usize, seed: u64) -> Rgb {
    let data = (0..side * side * 3)
        .map(|k| {
            let (x, y) = ((k / 3 % side) as f64, (k / 3 / side) as f64);
            (60.0 + x + 0.5 * y + 40.0 * uniform(seed, k as u64)) as u8
        })
        .collect();
    Rgb { width: side, height: side, data }
}

fn config(probability: f64, seed: u64, threads: usize) -> OfflineConfig {
    OfflineConfig {
        choices: MaskChoices { probability, ..MaskChoices::default() },
        seed,
        threads,
        quality: 95,
        max_bad: 0.5,
        overwrite: false,
        landmarks: None,
    }
}

fn run(input: &Path, out: &Path, cfg: &OfflineConfig) -> maskfr_core::Result<OfflineSummary> {
    mask_dataset(input, out, cfg, &PackProgress::default())
}

/// What the pipeline draws for image `ordinal`, and the masked pixels.
fn expected(cfg: &OfflineConfig, img: &Rgb, landmarks: Option<&[Point; 5]>, ordinal: u64) -> (Rgb, Option<MaskInfo>) {
    let p = MaskPipeline::from_choices(&cfg.choices).unwrap();
    let mut out = img.clone();
    let info = p.mask(&mut out, landmarks, mix(cfg.seed, ordinal));
    (out, info)
}

fn sidecar(out: &Path) -> Vec<String> {
    std::fs::read_to_string(sidecar_path(out)).unwrap().lines().map(String::from).collect()
}

#[test]
fn a_folder_is_masked_file_for_file_with_its_other_files_copied() {
    let d = scratch("folder");
    let input = d.join("faces");
    for id in ["alice", "bob"] {
        std::fs::create_dir_all(input.join(id)).unwrap();
    }
    // (relative path, content): PNGs (lossless: compared pixel for pixel), JPEGs, one bad.
    let mut images: Vec<(String, Rgb)> = vec![];
    for k in 0..8u64 {
        let (id, ext) = (["alice", "bob"][k as usize % 2], ["png", "jpg"][(k / 2) as usize % 2]);
        images.push((format!("{id}/{k}.{ext}"), image(112, k)));
    }
    images.sort_by(|a, b| a.0.cmp(&b.0));
    for (rel, img) in &images {
        let bytes = if rel.ends_with(".png") { encode_png(img) } else { encode_jpeg(img, 90) }.unwrap();
        std::fs::write(input.join(rel), bytes).unwrap();
    }
    std::fs::write(input.join("bob/broken.jpg"), b"\xff\xd8\xff not really a jpeg").unwrap();
    std::fs::write(input.join("pairs.txt"), "alice 0 1\n").unwrap();
    let out = d.join("masked");
    let cfg = config(0.6, 11, 2);
    // Typed with a trailing slash, the sidecar still lands beside the folder.
    let s = run(&input, &d.join("masked/"), &cfg).unwrap();
    assert!(d.join("masked.masks.jsonl").is_file());
    assert_eq!((s.images, s.bad, s.copied), (9, 1, 1));
    assert_eq!(std::fs::read(out.join("pairs.txt")).unwrap(), b"alice 0 1\n");
    assert_eq!(
        std::fs::read(out.join("bob/broken.jpg")).unwrap(),
        std::fs::read(input.join("bob/broken.jpg")).unwrap()
    );
    let bad = std::fs::read_to_string(bad_list_path(&out)).unwrap();
    assert!(bad.contains("bob/broken.jpg"), "{bad}");
    assert_eq!(bad_list_path(&out), d.join("masked.bad.txt"));

    let lines = sidecar(&out);
    assert!(lines[0].starts_with(r#"{"maskfr_masks": 1, "input": ""#), "{}", lines[0]);
    // Images in walk order (sorted paths): alice/…, bob/0…, bob/broken.jpg, bob/…
    let mut order: Vec<String> = images.iter().map(|(r, _)| r.clone()).collect();
    order.push("bob/broken.jpg".into());
    order.sort();
    assert_eq!(lines.len(), 1 + order.len());
    let mut masked = 0;
    for (ordinal, rel) in order.iter().enumerate() {
        let got = std::fs::read(out.join(rel)).unwrap();
        let Some((_, img)) = images.iter().find(|(r, _)| r == rel) else {
            assert_eq!(lines[1 + ordinal], line(&Key::Path(rel.clone()), None));
            continue;
        };
        let src = std::fs::read(input.join(rel)).unwrap();
        let decoded = decode(&src, rel, Dims::AtMost(4096)).unwrap();
        let (want, info) = expected(&cfg, &decoded, None, ordinal as u64);
        assert_eq!(lines[1 + ordinal], line(&Key::Path(rel.clone()), info.as_ref()), "{rel}");
        match info {
            None => assert_eq!(got, src, "{rel}: an unmasked image is copied byte for byte"),
            Some(_) => {
                masked += 1;
                let back = decode(&got, rel, Dims::Square(112)).unwrap();
                assert_eq!(got.starts_with(&[0xff, 0xd8]), rel.ends_with(".jpg"), "{rel}: its own format");
                if rel.ends_with(".png") {
                    assert_eq!(back, want, "{rel}");
                } else {
                    let diff =
                        back.data.iter().zip(&want.data).map(|(a, b)| (*a as f64 - *b as f64).abs()).sum::<f64>();
                    assert!(
                        diff / (want.data.len() as f64) < 3.0,
                        "{rel}: mean error {}",
                        diff / want.data.len() as f64
                    );
                }
                assert_ne!(back.data, img.data);
            }
        }
    }
    assert_eq!(s.masked, masked);
    assert!(masked > 0 && masked < 8, "{masked} of 8 masked at p = 0.6");
    assert_eq!(s.by_mask.iter().map(|x| x.2).sum::<u64>(), masked);
    // No temp files left beside the output.
    let names: Vec<_> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
}

/// A .rec in InsightFace's layout: header, `n` image records (PNG, labels k / 3, with
/// `landmarks(k)` when given), identity records.
fn write_rec(path: &Path, n: u64, landmarks: impl Fn(u64) -> Option<[Point; 5]>) {
    let ids = n.div_ceil(3);
    let mut w = RecordWriter::create(path, &path.with_extension("idx")).unwrap();
    w.write(0, &pack(&Header::vector(vec![(n + 1) as f32, (n + 1 + ids) as f32], 0), &[])).unwrap();
    for k in 1..=n {
        let body = encode_png(&image(112, 100 + k)).unwrap();
        w.write(k, &pack(&Header::image(((k - 1) / 3) as f32, landmarks(k).as_ref(), k), &body)).unwrap();
    }
    for l in 0..ids {
        let range = vec![(1 + 3 * l) as f32, (1 + (3 * l + 3).min(n)) as f32];
        w.write(n + 1 + l, &pack(&Header::vector(range, 0), &[])).unwrap();
    }
    w.finish().unwrap();
}

/// A small random similarity of the template: a face off the canonical position.
fn moved(k: u64) -> [Point; 5] {
    let (a, s) = (0.2 * (uniform(k, 0) - 0.5), 0.9 + 0.2 * uniform(k, 1));
    let (tx, ty) = (10.0 * (uniform(k, 2) - 0.5), 10.0 * (uniform(k, 3) - 0.5));
    ARCFACE_112.map(|[x, y]| {
        let (x, y) = (x - 56.0, y - 56.0);
        [56.0 + tx + s * (a.cos() * x - a.sin() * y), 56.0 + ty + s * (a.sin() * x + a.cos() * y)]
    })
}

#[test]
fn a_rec_keeps_its_keys_headers_and_landmarks_and_masks_on_them() {
    let d = scratch("rec");
    let (input, out) = (d.join("in.rec"), d.join("out.rec"));
    let n = 7;
    // f32 landmarks, as the header stores them.
    let lm = |k: u64| Some(moved(k).map(|p| p.map(|v| v as f32 as f64)));
    write_rec(&input, n, lm);
    let cfg = config(1.0, 3, 2);
    let s = run(&input, &out, &cfg).unwrap();
    assert_eq!((s.images, s.masked, s.bad, s.copied), (n, n, 0, 1 + n.div_ceil(3)));
    let (a, b) = (
        RecordFile::open(&input, Some(&input.with_extension("idx"))).unwrap(),
        RecordFile::open(&out, Some(&out.with_extension("idx"))).unwrap(),
    );
    let keys = |f: &RecordFile| f.index().iter().map(|x| x.0).collect::<Vec<_>>();
    assert_eq!(keys(&a), keys(&b));
    let lines = sidecar(&out);
    for (i, &(key, _)) in a.index().iter().enumerate() {
        let (pa, pb) = (a.read_key(key).unwrap(), b.read_key(key).unwrap());
        if !(1..=n).contains(&key) {
            assert_eq!(pa, pb, "record {key} (not an image) copied as is");
            continue;
        }
        let ((ha, ba), (hb, bb)) = (unpack(&pa, "a").unwrap(), unpack(&pb, "b").unwrap());
        assert_eq!(ha, hb, "record {key}: its header (identity, landmarks) kept");
        let src = decode(ba, "a", Dims::Square(112)).unwrap();
        let l = ha.landmarks("a").unwrap().unwrap();
        let (want, info) = expected(&cfg, &src, Some(&l), (i - 1) as u64);
        assert_eq!(decode(bb, "b", Dims::Square(112)).unwrap(), want, "record {key}: masked on its own landmarks");
        let (on_template, _) = expected(&cfg, &src, None, (i - 1) as u64);
        assert_ne!(want, on_template, "record {key}: its landmarks moved the mask");
        assert_eq!(lines[i], line(&Key::Number(key), info.as_ref()));
    }
    assert_eq!(lines.len(), 1 + n as usize);
}

fn write_bin(path: &Path, pairs: usize, side: usize) -> Vec<bool> {
    let issame: Vec<bool> = (0..pairs).map(|k| uniform(9, k as u64) < 0.5).collect();
    let mut w = BinWriter::create(path).unwrap();
    for i in 0..2 * pairs {
        w.image(&encode_jpeg(&image(side, 500 + i as u64), 90).unwrap()).unwrap();
    }
    w.finish(&issame).unwrap();
    issame
}

#[test]
fn a_bin_keeps_its_pairs_and_masks_about_the_share_asked() {
    let d = scratch("bin");
    let (input, out) = (d.join("lfw.bin"), d.join("lfw-masked.bin"));
    let issame = write_bin(&input, 100, 48);
    let p = 0.3;
    let s = run(&input, &out, &config(p, 5, 2)).unwrap();
    let (a, b) = (VerificationBin::read(&input).unwrap(), VerificationBin::read(&out).unwrap());
    assert_eq!((a.issame.clone(), b.issame.clone()), (issame.clone(), issame));
    assert_eq!(b.len(), 200);
    let lines = sidecar(&out);
    let mut masked = 0;
    for i in 0..200 {
        let unmasked = lines[1 + i].contains(r#""synthesizer": null"#);
        assert!(lines[1 + i].starts_with(&format!(r#"{{"key": {i}, "#)));
        assert_eq!(a.image(i) == b.image(i), unmasked, "image {i}");
        masked += usize::from(!unmasked);
    }
    assert_eq!(s.masked as usize, masked);
    // 200 draws at p = 0.3: within 4 standard deviations (0.13).
    let share = masked as f64 / 200.0;
    assert!((share - p).abs() < 0.13, "masked share {share}, asked {p}");
}

#[test]
fn the_output_does_not_depend_on_the_thread_count() {
    let d = scratch("threads");
    let input = d.join("in.rec");
    write_rec(&input, 9, |k| (k % 2 == 0).then(|| moved(k)));
    let outs: Vec<PathBuf> = [1, 3]
        .iter()
        .map(|&t| {
            let out = d.join(format!("out{t}.rec"));
            run(&input, &out, &config(0.7, 21, t)).unwrap();
            out
        })
        .collect();
    assert_eq!(std::fs::read(&outs[0]).unwrap(), std::fs::read(&outs[1]).unwrap());
    assert_eq!(sidecar(&outs[0])[1..], sidecar(&outs[1])[1..]);
}

#[test]
fn bad_paths_and_names_are_refused_naming_them() {
    let d = scratch("refuse");
    let input = d.join("in.bin");
    write_bin(&input, 2, 32);
    let cfg = config(1.0, 0, 1);
    let fail = |out: &Path, cfg: &OfflineConfig| run(&input, out, cfg).unwrap_err().0;
    run(&input, &d.join("out.bin"), &cfg).unwrap();
    let e = fail(&d.join("out.bin"), &cfg);
    assert!(e.contains("out.bin exists (--overwrite replaces it)"), "{e}");
    run(&input, &d.join("out.bin"), &OfflineConfig { overwrite: true, ..config(1.0, 0, 1) }).unwrap();
    assert!(fail(&d.join("out.rec"), &cfg).contains("is a .bin, so the output must be too"));
    // A folder into itself.
    let folder = d.join("faces");
    std::fs::create_dir_all(folder.join("a")).unwrap();
    std::fs::write(folder.join("a/1.png"), encode_png(&image(32, 1)).unwrap()).unwrap();
    for out in [folder.join("masked"), folder.join("a/../masked"), folder.clone()] {
        let e = run(&folder, &out, &cfg).unwrap_err().0;
        assert!(e.contains("is (inside) the input"), "{e}");
    }
    let e = run(&folder.join("a"), &folder, &OfflineConfig { overwrite: true, ..config(1.0, 0, 1) }).unwrap_err().0;
    assert!(e.contains("is inside the output"), "{e}");
    // Names: each error lists the valid ones.
    let named = |c: MaskChoices| {
        run(&input, &d.join("named.bin"), &OfflineConfig { choices: c, ..config(1.0, 0, 1) }).unwrap_err().0
    };
    let e = named(MaskChoices { kinds: vec!["surgical".into(), "bandana".into()], ..MaskChoices::default() });
    assert!(e.contains("unknown kind 'bandana' (valid: surgical, n95, kn95, cloth, gas, full, half)"), "{e}");
    let e = named(MaskChoices { colors: vec!["#12345g".into()], ..MaskChoices::default() });
    assert!(e.contains("unknown colour '#12345g' (valid: white, blue, black,") && e.contains("or #rrggbb"), "{e}");
    let e = named(MaskChoices { patterns: vec!["paisley".into()], ..MaskChoices::default() });
    assert!(e.contains("unknown pattern 'paisley' (valid: solid, stripes,"), "{e}");
    let e = named(MaskChoices {
        synthesizers: Synthesizers::Renderer,
        kinds: vec!["n95".into()],
        ..MaskChoices::default()
    });
    assert!(e.contains("the renderer is in use but --kinds names none of its kinds"), "{e}");
    let e = named(MaskChoices {
        synthesizers: Synthesizers::Template,
        kinds: vec!["n95".into(), "half".into()],
        ..MaskChoices::default()
    });
    assert!(e.contains("names a kind of a synthesizer not in use"), "{e}");
    assert!(!d.join("named.bin").exists());
}

#[test]
fn too_many_bad_images_refuse_the_run_writing_only_their_list() {
    let d = scratch("bad");
    let input = d.join("in.bin");
    let mut w = BinWriter::create(&input).unwrap();
    for i in 0..4 {
        let ok = encode_png(&image(32, i)).unwrap();
        w.image(if i % 2 == 0 { &ok } else { b"garbage" }).unwrap();
    }
    w.finish(&[true, false]).unwrap();
    let out = d.join("out.bin");
    let e = run(&input, &out, &OfflineConfig { max_bad: 0.25, ..config(1.0, 0, 2) }).unwrap_err().0;
    assert!(e.contains("2 of the 4 images cannot be read as images, more than the 25% allowed"), "{e}");
    assert!(e.contains("in.bin: image 1"), "{e}");
    assert!(!out.exists() && !sidecar_path(&out).exists());
    assert_eq!(std::fs::read_to_string(bad_list_path(&out)).unwrap().lines().count(), 2);
    // Allowed: the bad ones are copied as they were, so the pairs stay whole.
    let s = run(&input, &out, &config(1.0, 0, 2)).unwrap();
    assert_eq!((s.images, s.masked, s.bad), (4, 2, 2));
    assert_eq!(VerificationBin::read(&out).unwrap().image(1), b"garbage");
}

#[test]
fn a_folder_with_a_landmarks_file_is_masked_on_each_face_and_an_unnamed_image_is_bad() {
    let d = scratch("folder-landmarks");
    let input = d.join("faces");
    std::fs::create_dir_all(input.join("x")).unwrap();
    let mut points = std::collections::HashMap::new();
    for k in 0..4u64 {
        std::fs::write(input.join(format!("x/{k}.png")), encode_png(&image(112, 40 + k)).unwrap()).unwrap();
        if k != 2 {
            points.insert(PathBuf::from(format!("x/{k}.png")), moved(k));
        }
    }
    let cfg = OfflineConfig {
        landmarks: Some(LandmarkSet { file: d.join("marks.json"), points: points.clone() }),
        max_bad: 0.3,
        ..config(1.0, 8, 2)
    };
    let out = d.join("masked");
    let s = run(&input, &out, &cfg).unwrap();
    assert_eq!((s.images, s.masked, s.bad), (4, 3, 1));
    let bad = std::fs::read_to_string(bad_list_path(&out)).unwrap();
    assert!(bad.contains("x/2.png: no landmarks for x/2.png in ") && bad.contains("marks.json"), "{bad}");
    assert!(sidecar(&out)[0].contains(r#""landmarks": ""#));
    for k in [0u64, 1, 3] {
        let rel = format!("x/{k}.png");
        let src = image(112, 40 + k);
        let (want, _) = expected(&cfg, &src, Some(&moved(k)), k);
        assert_eq!(decode(&std::fs::read(out.join(&rel)).unwrap(), &rel, Dims::Square(112)).unwrap(), want, "{rel}");
        assert_ne!(want, expected(&cfg, &src, None, k).0, "{rel}: its landmarks moved the mask");
    }
    // Landmarks from a file are for folders: a .rec brings its own.
    let rec = d.join("in.rec");
    write_rec(&rec, 2, |_| None);
    let e = run(&rec, &d.join("o.rec"), &cfg).unwrap_err().0;
    assert!(e.contains("landmarks from a file are for a folder input"), "{e}");
}

#[test]
fn textures_from_a_folder_are_printed_and_an_empty_folder_is_refused() {
    let d = scratch("textures");
    let input = d.join("in.bin");
    write_bin(&input, 3, 112);
    let tex = d.join("fabrics");
    std::fs::create_dir_all(&tex).unwrap();
    let with = |dir: &Path| OfflineConfig {
        choices: MaskChoices {
            synthesizers: Synthesizers::Template,
            textures: Some(dir.to_path_buf()),
            ..MaskChoices::default()
        },
        ..config(1.0, 2, 2)
    };
    let e = run(&input, &d.join("a.bin"), &with(&tex)).unwrap_err().0;
    assert!(e.contains("textures: no .png/.jpg/.jpeg image in") && e.contains("fabrics"), "{e}");
    // A loud checkerboard fabric: the masks printed with it differ from the built-in ones.
    let check = Rgb {
        width: 32,
        height: 32,
        data: (0..32 * 32 * 3).map(|k| if (k / 3 % 32 / 4 + k / 3 / 32 / 4) % 2 == 0 { 250 } else { 10 }).collect(),
    };
    std::fs::write(tex.join("check.png"), encode_png(&check).unwrap()).unwrap();
    run(&input, &d.join("a.bin"), &with(&tex)).unwrap();
    let plain = OfflineConfig {
        choices: MaskChoices { synthesizers: Synthesizers::Template, ..MaskChoices::default() },
        ..config(1.0, 2, 2)
    };
    run(&input, &d.join("b.bin"), &plain).unwrap();
    let (a, b) = (VerificationBin::read(&d.join("a.bin")).unwrap(), VerificationBin::read(&d.join("b.bin")).unwrap());
    assert!((0..a.len()).all(|i| a.image(i) != b.image(i)));
    assert!(sidecar(&d.join("a.bin"))[0].contains(r#""textures": ""#));
}
