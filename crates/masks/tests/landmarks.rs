//! The loader hands each record's landmarks to the synthesizers: a face off the template gets
//! its mask where the face is, a flipped sample's mask and landmarks mirror with it, and a
//! dataset without landmarks is masked exactly as one carrying the aligned template's.

use maskfr_io::image_codec::{encode_png, Rgb};
use maskfr_io::loader::{epoch, mirror_landmarks, Augment, Batch, LoaderConfig, RecordSource, Source};
use maskfr_io::recordio::{pack, Header, RecordFile, RecordWriter};
use maskfr_masks::{MaskPipeline, Point, ARCFACE_112};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const S: usize = 112;
const N: usize = 12;

/// A .rec of N 112² images (a smooth pattern, or flat grey), each record with `landmarks`.
fn dataset(flat: bool, landmarks: Option<&[Point; 5]>) -> Arc<dyn Source> {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("maskfr-masks-lm-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (rec, idx): (PathBuf, PathBuf) = (dir.join("d.rec"), dir.join("d.idx"));
    let mut w = RecordWriter::create(&rec, &idx).unwrap();
    for i in 0..N {
        let data = (0..S * S * 3)
            .map(|k| if flat { 128 } else { ((k / 3 % S) * 2 + (k / 3 / S) + 40 * (k % 3) + 17 * i) as u8 })
            .collect();
        let body = encode_png(&Rgb { width: S, height: S, data }).unwrap();
        let h = match landmarks {
            Some(l) => Header::image(i as f32, Some(l), i as u64),
            None => Header::scalar(i as f32, i as u64),
        };
        w.write(i as u64, &pack(&h, &body)).unwrap();
    }
    w.finish().unwrap();
    let file = Arc::new(RecordFile::open(&rec, Some(&idx)).unwrap());
    Arc::new(RecordSource { file, keys: (0..N as u64).collect() })
}

fn cfg(shuffle: bool, flip: bool) -> LoaderConfig {
    LoaderConfig {
        batch: 4,
        seed: 5,
        rank: 0,
        world: 1,
        shuffle,
        flip,
        size: S,
        prefetch: 2,
        threads: 2,
        skip_corrupt: false,
        max_corrupt_share: 0.0,
    }
}

fn batches(src: &Arc<dyn Source>, aug: &Arc<dyn Augment>, c: &LoaderConfig) -> Vec<Batch> {
    epoch(src.clone(), Some(aug.clone()), c, 0, 0).unwrap().map(|b| b.unwrap()).collect()
}

fn pipeline(template_share: f64) -> Arc<dyn Augment> {
    Arc::new(MaskPipeline::new(1.0, template_share, None).unwrap())
}

#[test]
fn a_dataset_without_landmarks_is_masked_as_one_carrying_the_template() {
    // Records without landmarks are masked on the aligned template: bit for bit as the same
    // records carrying the template's landmarks explicitly (f32 in their headers), shuffled,
    // flipped, both synthesizers, some samples unmasked; records with other landmarks differ.
    let aug: Arc<dyn Augment> = Arc::new(MaskPipeline::new(0.7, 0.5, None).unwrap());
    let c = cfg(true, true);
    let none = batches(&dataset(false, None), &aug, &c);
    let template = batches(&dataset(false, Some(&ARCFACE_112)), &aug, &c);
    let moved = ARCFACE_112.map(|[x, y]| [x * 0.95 + 4.0, y * 0.95 + 1.5]);
    let other = batches(&dataset(false, Some(&moved)), &aug, &c);
    let (mut masked, mut differ) = (0, 0);
    for ((a, b), o) in none.iter().zip(&template).zip(&other) {
        assert!(a.landmarks.iter().all(Option::is_none) && b.landmarks.iter().all(Option::is_some));
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.masked, b.masked);
        assert!(
            a.images.iter().zip(&b.images).all(|(x, y)| x.to_bits() == y.to_bits()),
            "template landmarks changed the pixels"
        );
        masked += a.masked.iter().filter(|&&m| m).count();
        let per = 3 * S * S;
        for k in 0..a.labels.len() {
            differ += usize::from(a.masked[k] && a.images[k * per..][..per] != o.images[k * per..][..per]);
        }
    }
    assert!(masked > 0 && masked < N, "{masked} of {N} masked at p = 0.7");
    assert_eq!(differ, masked, "every masked sample moves with its landmarks");
}

/// The centroid of the pixels a mask changed on the flat grey face (CHW, normalised), among
/// those that stay inside the image when moved by `shift`: a mask (or a strap) that the move
/// pushes past an edge loses pixels there, which would pull an unrestricted centroid back.
fn centroid(img: &[f32], shift: [i64; 2]) -> Point {
    let grey = 128.0 / 127.5 - 1.0;
    let inside = |v: usize, d: i64| (0..S as i64).contains(&(v as i64 + d));
    let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
    for y in (0..S).filter(|&y| inside(y, shift[1])) {
        for x in (0..S).filter(|&x| inside(x, shift[0])) {
            if (0..3).any(|c| (img[c * S * S + y * S + x] - grey).abs() > 1e-6) {
                (sx, sy, n) = (sx + x as f64, sy + y as f64, n + 1.0);
            }
        }
    }
    assert!(n > 500.0, "only {n} pixels masked");
    [sx / n, sy / n]
}

#[test]
fn a_face_off_the_template_gets_its_mask_where_its_landmarks_are() {
    let (dx, dy) = (9.0, -7.0);
    let moved = ARCFACE_112.map(|[x, y]| [x + dx, y + dy]);
    for share in [1.0, 0.0] {
        let aug = pipeline(share);
        let on = batches(&dataset(true, Some(&ARCFACE_112)), &aug, &cfg(false, false));
        let off = batches(&dataset(true, Some(&moved)), &aug, &cfg(false, false));
        for (a, b) in on.iter().zip(&off) {
            assert_eq!(b.landmarks[0].unwrap()[2], [moved[2][0] as f32 as f64, moved[2][1] as f32 as f64]);
            for k in 0..a.labels.len() {
                let per = 3 * S * S;
                let d = [dx as i64, dy as i64];
                let (ca, cb) =
                    (centroid(&a.images[k * per..][..per], d), centroid(&b.images[k * per..][..per], d.map(|v| -v)));
                let shift = [cb[0] - ca[0], cb[1] - ca[1]];
                assert!((shift[0] - dx).abs() < 1.0 && (shift[1] - dy).abs() < 1.0, "share {share}: moved {shift:?}");
            }
        }
    }
}

#[test]
fn a_flipped_sample_mirrors_its_mask_and_its_landmarks() {
    let moved = ARCFACE_112.map(|[x, y]| [x + 6.0, y - 3.0]);
    let src = dataset(false, Some(&moved));
    let aug = pipeline(0.5);
    let (plain, flipped) = (batches(&src, &aug, &cfg(true, false)), batches(&src, &aug, &cfg(true, true)));
    let mut mirrored = 0;
    for (a, b) in plain.iter().zip(&flipped) {
        for k in 0..a.labels.len() {
            let per = 3 * S * S;
            let (ia, ib) = (&a.images[k * per..][..per], &b.images[k * per..][..per]);
            let (la, lb) = (a.landmarks[k].unwrap(), b.landmarks[k].unwrap());
            if ia == ib {
                assert_eq!(la, lb);
                continue;
            }
            mirrored += 1;
            for (c, y, x) in (0..3).flat_map(|c| (0..S).flat_map(move |y| (0..S).map(move |x| (c, y, x)))) {
                assert_eq!(ib[c * S * S + y * S + x], ia[c * S * S + y * S + S - 1 - x]);
            }
            assert_eq!(lb, mirror_landmarks(&la, S));
            // The left eye of the mirrored face is on the left again.
            assert!(lb[0][0] < lb[1][0] && lb[3][0] < lb[4][0]);
        }
    }
    assert!(mirrored > 0);
}
