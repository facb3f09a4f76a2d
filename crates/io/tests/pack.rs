//! Streamed packing: bad images listed and skipped (or the pack refused), labels and order
//! as the folder gives them, `.lst` paths confined to their folder, re-packs of a subset,
//! landmarks into the headers and aligned crops.

use maskfr_io::align::{norm_crop, norm_transform, Warp, ARCFACE_DST};
use maskfr_io::image_codec::{decode, encode_jpeg, encode_png, Dims, Rgb};
use maskfr_io::pack::{bad_list_path, pack, Input, LandmarkSet, PackConfig, PackProgress, PackSummary};
use maskfr_io::recordio::{unpack, Layout, RecordFile};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

fn tmpdir() -> PathBuf {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "maskfr-pack-{}-{}",
        std::process::id(),
        CALLS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn image(v: u8) -> Vec<u8> {
    encode_jpeg(&Rgb { width: 8, height: 8, data: vec![v; 8 * 8 * 3] }, 90).unwrap()
}

fn write(p: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// A PNG wider than pack decodes (the header is checked before any pixel).
fn too_wide() -> Vec<u8> {
    encode_png(&Rgb { width: 4100, height: 1, data: vec![90; 4100 * 3] }).unwrap()
}

fn run(input: &Input, out: &Path, max_bad: f64) -> maskfr_io::Result<PackSummary> {
    pack(
        input,
        out,
        &PackConfig { threads: 2, max_bad, landmarks: None, align_quality: None, align_warp: Warp::Fixed },
        &PackProgress::default(),
    )
}

/// (label, body) of every image.
type Images = Vec<(f32, Vec<u8>)>;

/// The images and the identity ranges of a packed `.rec`.
fn read(rec: &Path) -> (Images, Vec<(u64, u64)>) {
    let f = RecordFile::open(rec, Some(&rec.with_extension("idx"))).unwrap();
    let layout = Layout::of(&f).unwrap();
    let images = layout
        .images
        .iter()
        .map(|&k| {
            let payload = f.read_key(k).unwrap();
            let (h, body) = unpack(&payload, "r").unwrap();
            assert_eq!(h.id, k);
            (h.label, body.to_vec())
        })
        .collect();
    (images, layout.identities.unwrap())
}

#[test]
fn a_folder_with_bad_images_is_packed_without_them_and_they_are_listed() {
    let d = tmpdir();
    let root = d.join("faces");
    write(&root.join("a/0.jpg"), &image(10));
    write(&root.join("a/1.jpg"), &image(20)[..100]); // truncated: its header reads, its pixels don't
    write(&root.join("a/2.jpg"), b"a text file named .jpg");
    write(&root.join("b/0.png"), &too_wide());
    write(&root.join("b/1.jpg"), &image(30));
    write(&root.join("b/2.JPG"), &image(40));
    write(&root.join("b/notes.txt"), b"not listed: not an image name");
    let out = d.join("x.rec");
    let progress = PackProgress::default();
    let s = pack(&Input::Folder(root.clone()), &out, &config(None, None), &progress).unwrap();
    assert_eq!(
        s,
        PackSummary { images: 3, identities: 2, empty_identities: 0, bad: 3, bad_list: Some(bad_list_path(&out)) }
    );
    assert_eq!((progress.total.load(Ordering::Relaxed), progress.done.load(Ordering::Relaxed)), (6, 6));
    let (images, ids) = read(&out);
    assert!(images == [(0.0, image(10)), (1.0, image(30)), (1.0, image(40))], "labels or order differ");
    assert_eq!(ids, vec![(1, 2), (2, 4)]);
    let listed = std::fs::read_to_string(d.join("x.bad.txt")).unwrap();
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert!(lines[0].starts_with(&format!("{}: corrupt image", root.join("a/1.jpg").display())), "{listed}");
    assert!(
        lines[1].starts_with(&format!("{}: 22 bytes that are neither JPEG nor PNG", root.join("a/2.jpg").display()))
    );
    assert!(lines[2].contains("b/0.png: the header declares 4100x1 pixels"), "{listed}");

    // Strict: nothing packed (no temp file left either), the list written.
    let strict = d.join("strict.rec");
    let e = run(&Input::Folder(root.clone()), &strict, 0.0).unwrap_err().0;
    assert!(
        e.starts_with("pack: 3 of the 6 images cannot be read or decoded, more than the 0% allowed; nothing written"),
        "{e}"
    );
    assert!(e.contains("a/2.jpg: 22 bytes that are neither JPEG nor PNG"), "{e}");
    let mut left: Vec<String> =
        std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(left, ["faces", "strict.bad.txt", "x.bad.txt", "x.idx", "x.rec"]);

    // A clean re-pack removes the stale list; an identity without any good image keeps its
    // label as an empty range.
    std::fs::remove_file(root.join("a/1.jpg")).unwrap();
    std::fs::remove_file(root.join("a/2.jpg")).unwrap();
    std::fs::write(root.join("b/0.png"), image(50)).unwrap();
    assert_eq!(run(&Input::Folder(root.clone()), &out, 0.0).unwrap().bad_list, None);
    assert!(!d.join("x.bad.txt").exists());
    std::fs::write(root.join("a/0.jpg"), b"broken").unwrap();
    let s = run(&Input::Folder(root.clone()), &out, 0.5).unwrap();
    assert_eq!((s.images, s.identities, s.empty_identities, s.bad), (3, 2, 1, 1));
    let (images, ids) = read(&out);
    assert_eq!(images.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [1.0, 1.0, 1.0]);
    assert_eq!(ids, vec![(1, 1), (1, 4)]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_list_is_confined_to_its_folder_unless_a_root_is_given() {
    let d = tmpdir();
    write(&d.join("data/a/0.jpg"), &image(1));
    write(&d.join("data/b/0.jpg"), &image(2));
    write(&d.join("outside.jpg"), &image(3));
    let lst = d.join("data/train.lst");
    std::fs::write(&lst, "0\ta/0.jpg\t0\n\n1\t./b/../b/0.jpg\t1.000000\n").unwrap();
    let out = d.join("l.rec");
    let s = run(&Input::List { lst: lst.clone(), root: None }, &out, 0.0).unwrap();
    assert_eq!((s.images, s.identities, s.bad), (2, 2, 0));
    assert!(read(&out).0 == [(0.0, image(1)), (1.0, image(2))]);
    for (path, why) in [("../outside.jpg", "../outside.jpg is outside"), ("/etc/passwd", "/etc/passwd is outside")] {
        std::fs::write(&lst, format!("0\ta/0.jpg\t0\n1\t{path}\t1\n")).unwrap();
        let e = run(&Input::List { lst: lst.clone(), root: None }, &out, 0.0).unwrap_err().0;
        assert!(e.starts_with(&format!("{}: line 2: {why}", lst.display())), "{e}");
        assert!(e.ends_with("(absolute paths and '..' need an explicit root)"), "{e}");
    }
    std::fs::write(&lst, "0\ta/0.jpg\t0\n1\t../outside.jpg\t1\n").unwrap();
    let e = run(&Input::List { lst: lst.clone(), root: Some(d.join("elsewhere")) }, &out, 0.0).unwrap_err().0;
    assert!(e.contains("elsewhere/a/0.jpg: cannot read"), "{e}"); // relative to the root given
    let s = run(&Input::List { lst: lst.clone(), root: Some(d.join("data")) }, &out, 0.0).unwrap();
    assert!(read(&out).0 == [(0.0, image(1)), (1.0, image(3))]);
    assert_eq!(s.images, 2);
    std::fs::write(&lst, "0\ta/0.jpg\t1\n1\tb/0.jpg\t0\n").unwrap();
    let e = run(&Input::List { lst: lst.clone(), root: None }, &out, 0.0).unwrap_err().0;
    assert!(e.contains("line 2: label 0 after label 1: the list must be grouped by ascending label"), "{e}");
    std::fs::write(&lst, "0\ta/0.jpg\t0.5\n").unwrap();
    let e = run(&Input::List { lst: lst.clone(), root: None }, &out, 0.0).unwrap_err().0;
    assert!(e.ends_with("line 1: label \"0.5\" is not a whole number in [0, 2^24)"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_rec_is_repacked_whole_or_a_subset_of_its_identities() {
    let d = tmpdir();
    for id in 0..4u8 {
        for i in 0..=id {
            write(&d.join(format!("faces/{id}/{i}.jpg")), &image(10 * id + i));
        }
    }
    let full = d.join("full.rec");
    run(&Input::Folder(d.join("faces")), &full, 0.0).unwrap();
    let again = d.join("again.rec");
    let whole = Input::Record { rec: full.clone(), idx: None, identities: None };
    assert_eq!(run(&whole, &again, 0.0).unwrap().images, 10);
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&full).unwrap());
    assert_eq!(std::fs::read(d.join("again.idx")).unwrap(), std::fs::read(d.join("full.idx")).unwrap());
    let list = d.join("keep.txt");
    std::fs::write(&list, "3\n1\n\n3\n").unwrap();
    let sub = d.join("sub.rec");
    let subset = Input::Record { rec: full.clone(), idx: Some(d.join("full.idx")), identities: Some(list.clone()) };
    let s = run(&subset, &sub, 0.0).unwrap();
    assert_eq!((s.images, s.identities), (6, 2));
    let (images, ids) = read(&sub);
    let want: Images = [(0.0, 10), (0.0, 11), (1.0, 30), (1.0, 31), (1.0, 32), (1.0, 33)]
        .into_iter()
        .map(|(l, v)| (l, image(v)))
        .collect();
    assert!(images == want, "labels or order differ");
    assert_eq!(ids, vec![(1, 3), (3, 7)]);
    std::fs::write(&list, "1\n4\n").unwrap();
    let e = run(&subset, &sub, 0.0).unwrap_err().0;
    let want = format!("keep.txt: line 2: \"4\" is not the label of one of the 4 identities of {}", full.display());
    assert!(e.ends_with(&want), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_rec_without_the_identity_header_is_repacked_by_its_records_labels_grouped_or_refused() {
    use maskfr_io::recordio::{pack as record, Header, RecordWriter};
    let d = tmpdir();
    let plain = |name: &str, labels: &[f32]| {
        let rec = d.join(name);
        let mut w = RecordWriter::create(&rec, &rec.with_extension("idx")).unwrap();
        for (k, &l) in labels.iter().enumerate() {
            w.write(k as u64, &record(&Header::scalar(l, k as u64), &image(k as u8))).unwrap();
        }
        w.finish().unwrap();
        Input::Record { rec, idx: None, identities: None }
    };
    let out = d.join("o.rec");
    let s = run(&plain("grouped.rec", &[0.0, 0.0, 2.0]), &out, 0.0).unwrap();
    assert_eq!((s.images, s.identities, s.empty_identities), (3, 3, 1));
    assert_eq!(read(&out).1, vec![(1, 3), (3, 3), (3, 4)]);
    let e = run(&plain("mixed.rec", &[1.0, 0.0]), &out, 0.0).unwrap_err().0;
    assert_eq!(e, "pack: image 2 has label 0 after label 1: the input must be grouped by ascending label");
    // The two inputs and the first output: the refused pack left no temp file.
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 6);
    std::fs::remove_dir_all(&d).unwrap();
}

/// A 150×130 image with some structure, so an aligned crop shows where it came from.
fn photo(v: u8) -> Vec<u8> {
    let data = (0..150 * 130 * 3).map(|k| ((k / 3 % 150) as u8).wrapping_mul(3) ^ ((k / 450) as u8) ^ v).collect();
    encode_png(&Rgb { width: 150, height: 130, data }).unwrap()
}

fn config(landmarks: Option<LandmarkSet>, align_quality: Option<u8>) -> PackConfig {
    PackConfig { threads: 2, max_bad: 0.5, landmarks, align_quality, align_warp: Warp::Float }
}

#[test]
fn landmarks_travel_in_the_headers_and_align_stores_norm_crop_with_them_moved() {
    let d = tmpdir();
    let names = ["a/0.png", "a/1.png", "b/0.png", "b/1.png"];
    names.iter().enumerate().for_each(|(i, n)| write(&d.join("faces").join(n), &photo(40 * i as u8)));
    let pts = |i: usize| ARCFACE_DST.map(|[x, y]| [1.2 * x + 10.0 + i as f64, 1.2 * y + 5.0 + 0.5 * i as f64]);
    // b/1.png has none: bad, listed as any other bad image.
    let set = || LandmarkSet {
        file: "lm.txt".into(),
        points: names[..3].iter().enumerate().map(|(i, n)| (PathBuf::from(n), pts(i))).collect(),
    };
    let input = Input::Folder(d.join("faces"));
    let out = d.join("l.rec");
    let s = pack(&input, &out, &config(Some(set()), None), &PackProgress::default()).unwrap();
    assert_eq!((s.images, s.bad), (3, 1));
    let listed = std::fs::read_to_string(bad_list_path(&out)).unwrap();
    assert!(listed.ends_with("faces/b/1.png: no landmarks for b/1.png in lm.txt\n"), "{listed}");
    let f = RecordFile::open(&out, None).unwrap();
    for (i, &k) in Layout::of(&f).unwrap().images.iter().enumerate() {
        let payload = f.read_key(k).unwrap();
        let (h, body) = unpack(&payload, "r").unwrap();
        assert_eq!((h.flag, h.identity()), (11, [0.0, 0.0, 1.0][i]));
        assert_eq!(h.landmarks("r").unwrap().unwrap(), pts(i).map(|p| p.map(|v| v as f32 as f64)));
        assert_eq!(body, photo(40 * i as u8));
    }
    // A re-pack of that .rec keeps its records' landmarks, to the byte.
    let again = d.join("again.rec");
    pack(
        &Input::Record { rec: out.clone(), idx: None, identities: None },
        &again,
        &config(None, None),
        &PackProgress::default(),
    )
    .unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&out).unwrap());
    // Aligned: each image is norm_crop's crop, its landmarks moved by the same similarity.
    let aligned = d.join("a.rec");
    pack(&input, &aligned, &config(Some(set()), Some(90)), &PackProgress::default()).unwrap();
    let f = RecordFile::open(&aligned, None).unwrap();
    for (i, &k) in Layout::of(&f).unwrap().images.iter().enumerate() {
        let payload = f.read_key(k).unwrap();
        let (h, body) = unpack(&payload, "r").unwrap();
        let original = decode(&photo(40 * i as u8), "p", Dims::AtMost(4096)).unwrap();
        assert_eq!(body, encode_jpeg(&norm_crop(&original, &pts(i), 112, Warp::Float, "p").unwrap(), 90).unwrap());
        let m = norm_transform(&pts(i), 112).unwrap();
        let moved = pts(i).map(|[x, y]| [m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]]);
        assert_eq!(h.landmarks("r").unwrap().unwrap(), moved.map(|p| p.map(|v| v as f32 as f64)));
        // These landmarks are a similarity of the template: they land on it.
        moved.iter().zip(ARCFACE_DST).for_each(|(a, b)| assert!((a[0] - b[0]).hypot(a[1] - b[1]) < 1e-3));
    }
    // Without landmarks there is nothing to align by; a .rec brings its own.
    let e = pack(&input, &d.join("n.rec"), &config(None, Some(90)), &PackProgress::default()).unwrap_err().0;
    assert!(e.contains("faces/a/0.png: no landmarks to align it by"), "{e}");
    let rec = Input::Record { rec: out.clone(), idx: None, identities: None };
    let e = pack(&rec, &d.join("n.rec"), &config(Some(set()), None), &PackProgress::default()).unwrap_err().0;
    assert!(e.contains("a landmarks file is for a folder or a .lst"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_lists_landmarks_are_keyed_by_its_paths_as_written() {
    let d = tmpdir();
    write(&d.join("data/x/0.png"), &photo(1));
    write(&d.join("data/y/0.png"), &photo(2));
    let lst = d.join("data/train.lst");
    std::fs::write(&lst, "0\tx/0.png\t0\n1\ty/0.png\t1\n").unwrap();
    let pts = |s: f64| ARCFACE_DST.map(|[x, y]| [x + s, y]);
    let set = LandmarkSet {
        file: "lm".into(),
        points: [("x/0.png", pts(1.0)), ("y/0.png", pts(2.0))]
            .into_iter()
            .map(|(n, p)| (PathBuf::from(n), p))
            .collect(),
    };
    let out = d.join("l.rec");
    pack(&Input::List { lst, root: None }, &out, &config(Some(set), None), &PackProgress::default()).unwrap();
    let f = RecordFile::open(&out, None).unwrap();
    for (i, &k) in Layout::of(&f).unwrap().images.iter().enumerate() {
        let payload = f.read_key(k).unwrap();
        let (h, _) = unpack(&payload, "r").unwrap();
        assert_eq!(h.landmarks("r").unwrap().unwrap()[0][0], (38.2946 + 1.0 + i as f64) as f32 as f64);
    }
    std::fs::remove_dir_all(&d).unwrap();
}
