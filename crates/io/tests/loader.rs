//! The loader: deterministic batches whatever the thread count, a true partition across
//! ranks, flips and normalisation, corrupt records skipped and counted or reported.

use maskfr_io::folder::FolderIndex;
use maskfr_io::image_codec::MAX_FILE_BYTES;
use maskfr_io::image_codec::{encode_png, Rgb};
use maskfr_io::loader::{epoch, shard, LoaderConfig, RecordSource, Source};
use maskfr_io::recordio::{pack, Header, RecordFile, RecordWriter};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const N: usize = 23;

/// A .rec of N 8×8 images; image i is filled with value i·10 (except pixel 0 of each row,
/// 255, so flips show); the records in `corrupt` hold garbage instead of an image.
fn dataset(corrupt: &[usize]) -> Arc<dyn Source> {
    // A folder per call: tests run in parallel, and two writing one .rec raced (one test
    // opened the file while another was replacing it).
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("maskfr-loader-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (rec, idx): (PathBuf, PathBuf) = (dir.join("d.rec"), dir.join("d.idx"));
    let mut w = RecordWriter::create(&rec, &idx).unwrap();
    for i in 0..N {
        let mut data = vec![(i * 10) as u8; 8 * 8 * 3];
        (0..8).for_each(|y| data[y * 24..y * 24 + 3].fill(255));
        let body = if corrupt.contains(&i) {
            b"not an image".to_vec()
        } else {
            encode_png(&Rgb { width: 8, height: 8, data }).unwrap()
        };
        w.write(i as u64, &pack(&Header::scalar((i % 5) as f32, i as u64), &body)).unwrap();
    }
    w.finish().unwrap();
    let file = Arc::new(RecordFile::open(&rec, Some(&idx)).unwrap());
    Arc::new(RecordSource { file, keys: (0..N as u64).collect() })
}

fn cfg(threads: usize) -> LoaderConfig {
    LoaderConfig {
        batch: 4,
        seed: 9,
        rank: 0,
        world: 1,
        shuffle: true,
        flip: true,
        size: 8,
        prefetch: 3,
        threads,
        skip_corrupt: false,
        max_corrupt_share: 0.01,
    }
}

fn collect(src: &Arc<dyn Source>, c: &LoaderConfig, ep: u64) -> Vec<(Vec<f32>, Vec<i32>)> {
    epoch(src.clone(), None, c, ep, 0).unwrap().map(|b| b.unwrap()).map(|b| (b.images, b.labels)).collect()
}

#[test]
fn same_seed_same_batches_whatever_the_threads() {
    let src = dataset(&[]);
    let one = collect(&src, &cfg(1), 0);
    assert_eq!(one.len(), N / 4, "the last partial batch is dropped");
    assert_eq!(one, collect(&src, &cfg(3), 0));
    assert_ne!(one, collect(&src, &cfg(2), 1), "another epoch, another order");
    let rest: Vec<_> = epoch(src.clone(), None, &cfg(2), 0, 2).unwrap().map(|b| b.unwrap()).collect();
    assert_eq!(rest.len(), one.len() - 2, "starting at batch 2 skips two");
    assert!(rest.iter().zip(&one[2..]).all(|(b, o)| (&b.images, &b.labels) == (&o.0, &o.1)), "and resumes exactly");
    assert!(rest.iter().all(|b| b.indices.len() == b.labels.len()));
    assert!(epoch(src.clone(), None, &cfg(1), 0, one.len() + 1).is_err());
    let px = &one[0].0;
    assert!(px.iter().all(|v| (-1.0..=1.0).contains(v)), "normalised to [-1, 1]");
}

#[test]
fn ranks_partition_the_epoch_and_flips_happen() {
    let mut seen = HashSet::new();
    let mut c = cfg(1);
    c.world = 3;
    for rank in 0..3 {
        c.rank = rank;
        let s = shard(N, &c, 4);
        assert_eq!(s.len(), N.div_ceil(3));
        seen.extend(s);
    }
    assert_eq!(seen.len(), N, "every sample is on some rank");
    let batches = collect(&dataset(&[]), &cfg(2), 0);
    let (mut left, mut right) = (0, 0);
    for (img, _) in &batches {
        for s in img.chunks(3 * 64) {
            if s[0] == 1.0 {
                left += 1
            } else if s[7] == 1.0 {
                right += 1
            }
        }
    }
    assert!(left > 0 && right > 0, "some samples flipped ({right}) and some not ({left})");
}

#[test]
fn corrupt_records_are_reported_or_replaced_by_the_next_readable_one() {
    let src = dataset(&[6]);
    let e = epoch(src.clone(), None, &LoaderConfig { shuffle: false, ..cfg(1) }, 0, 0)
        .unwrap()
        .nth(1)
        .unwrap()
        .err()
        .unwrap();
    assert!(e.0.contains("d.rec: record 6: corrupt image") || e.0.contains("d.rec: record 6: 12 bytes"), "{}", e.0);
    // 1 of 23 is 4.3%: allowed at a 5% share, the batch still full, record 8 (the next
    // readable one after this batch's own 4..8) in record 6's slot.
    let c = LoaderConfig { shuffle: false, skip_corrupt: true, max_corrupt_share: 0.05, ..cfg(1) };
    let b = epoch(src.clone(), None, &c, 0, 0).unwrap().nth(1).unwrap().unwrap();
    assert_eq!((b.labels.len(), b.images.len()), (4, 4 * 3 * 64), "the batch stays full");
    assert_eq!(b.indices, [4, 5, 8, 7]);
    assert_eq!(b.skipped.len(), 1);
    assert_eq!(b.skipped[0].index, 6);
    assert!(b.skipped[0].why.contains("d.rec: record 6: "), "{}", b.skipped[0].why);
    let shuffled = |threads| {
        let c = LoaderConfig { skip_corrupt: true, max_corrupt_share: 0.05, ..cfg(threads) };
        epoch(src.clone(), None, &c, 0, 0)
            .unwrap()
            .map(|b| b.unwrap())
            .map(|b| (b.indices, b.images))
            .collect::<Vec<_>>()
    };
    let one = shuffled(1);
    assert!(one.iter().all(|(i, _)| i.len() == 4));
    assert_eq!(one, shuffled(3), "replacements do not depend on the threads");
    // The default 1% allows none of 23: the epoch stops, naming the file, count and share.
    let c = LoaderConfig { shuffle: false, skip_corrupt: true, ..cfg(1) };
    let e = epoch(src, None, &c, 0, 0).unwrap().find_map(|b| b.err()).unwrap().0;
    assert!(
        e.contains("d.rec: 1 of the 23 samples of epoch 0 on this rank are corrupt (4.35%), more than maxCorruptShare 0.01 allows (1.00%); the first: ")
            && e.contains("d.rec: record 6: "),
        "{e}"
    );
}

#[test]
fn a_corrupt_sample_met_again_as_a_replacement_counts_once() {
    // Unshuffled batches of 4 over 23: the last (16..20) finds 16 and 17 corrupt, then takes
    // its replacements from the dropped tail (20, 21, 22: corrupt) and wraps to 0, 1 (corrupt,
    // already counted in batch 0), 2. Six distinct corrupt samples: 30% of 23 allows six.
    let src = dataset(&[1, 16, 17, 20, 21, 22]);
    let c = LoaderConfig { shuffle: false, skip_corrupt: true, max_corrupt_share: 0.3, ..cfg(2) };
    let batches: Vec<_> = epoch(src, None, &c, 0, 0).unwrap().map(|b| b.unwrap()).collect();
    assert_eq!(batches[4].indices, [0, 2, 18, 19]);
    let skipped: Vec<usize> = batches.iter().flat_map(|b| b.skipped.iter().map(|s| s.index)).collect();
    assert_eq!(skipped, [1, 16, 20, 21, 22, 17]);
}

#[test]
fn an_all_corrupt_dataset_stops_with_the_count_never_an_empty_batch() {
    let all: Vec<usize> = (0..N).collect();
    let c = LoaderConfig { skip_corrupt: true, max_corrupt_share: 0.5, ..cfg(2) };
    let e = epoch(dataset(&all), None, &c, 0, 0).unwrap().next().unwrap().err().unwrap().0;
    assert!(e.contains("d.rec: 12 of the 23 samples of epoch 0 on this rank are corrupt (52.17%), more than maxCorruptShare 0.5 allows (50.00%)"), "{e}");
    // A share of 1 allows every sample to be skipped: the batch still cannot be filled.
    let c = LoaderConfig { max_corrupt_share: 1.0, ..c };
    let e = epoch(dataset(&all), None, &c, 0, 0).unwrap().next().unwrap().err().unwrap().0;
    assert!(e.ends_with("d.rec: fewer than 4 readable samples among the 23 of epoch 0 on this rank"), "{e}");
    let e = epoch(dataset(&all), None, &LoaderConfig { max_corrupt_share: 1.5, ..c }, 0, 0).err().unwrap().0;
    assert_eq!(e, "loader: maxCorruptShare must be in [0, 1], got 1.5");
}

#[test]
fn an_image_file_above_the_size_limit_is_refused_before_it_is_read() {
    let dir = std::env::temp_dir().join(format!("maskfr-bigfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (big, small) = (dir.join("a").join("big.jpg"), dir.join("b").join("small.png"));
    for id in ["a", "b"] {
        std::fs::create_dir_all(dir.join(id)).unwrap();
    }
    // Sparse: no disk used, and a read of it would allocate the whole size.
    std::fs::File::create(&big).unwrap().set_len(MAX_FILE_BYTES + 1).unwrap();
    std::fs::write(&small, encode_png(&Rgb { width: 2, height: 2, data: vec![7; 12] }).unwrap()).unwrap();
    let src = FolderIndex::scan(&dir).unwrap();
    let e = src.read(0).unwrap_err();
    assert_eq!(
        e.0,
        format!("{}: {} bytes, more than an image file may have (64 MiB)", big.display(), MAX_FILE_BYTES + 1)
    );
    assert_eq!(src.read(1).unwrap().label, 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_landmarks_in_a_record_are_an_error_naming_it() {
    let dir = std::env::temp_dir().join(format!("maskfr-loader-lm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (rec, idx) = (dir.join("l.rec"), dir.join("l.idx"));
    let mut w = RecordWriter::create(&rec, &idx).unwrap();
    let body = encode_png(&Rgb { width: 8, height: 8, data: vec![9; 8 * 8 * 3] }).unwrap();
    let mut nan = vec![1.0, 1.0, 2.0, 6.0, 2.0, 4.0, 4.0, 2.0, 6.0, 6.0, 6.0];
    nan[6] = f32::NAN;
    for (k, labels) in [vec![3.0], nan, vec![3.0; 7]].into_iter().enumerate() {
        w.write(k as u64, &pack(&Header::vector(labels, k as u64), &body)).unwrap();
    }
    w.finish().unwrap();
    let file = Arc::new(RecordFile::open(&rec, Some(&idx)).unwrap());
    let src = RecordSource { file, keys: vec![0, 1, 2] };
    let s = src.read(0).unwrap();
    assert_eq!((s.label, s.landmarks), (3, None));
    let e = src.read(1).unwrap_err().0;
    assert!(e.ends_with("l.rec: record 1: the nose is at (4, NaN): not finite"), "{e}");
    let e = src.read(2).unwrap_err().0;
    assert!(e.ends_with("l.rec: record 2: 7 labels in the IRHeader: an image has 1 (its identity) or 11 (its identity and five landmarks x1, y1, …, x5, y5)"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_linked_identity_folder_keeps_its_label_and_a_dangling_link_is_named() {
    let dir = std::env::temp_dir().join(format!("maskfr-linked-{}", std::process::id()));
    let (root, elsewhere) = (dir.join("root"), dir.join("elsewhere"));
    let png = encode_png(&Rgb { width: 2, height: 2, data: vec![7; 12] }).unwrap();
    for d in [root.join("a"), root.join("c"), elsewhere.join("b")] {
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("0.png"), &png).unwrap();
    }
    // A subset made with `ln -s`: b sits between a and c, so c keeps label 2.
    std::os::unix::fs::symlink(elsewhere.join("b"), root.join("b")).unwrap();
    let src = FolderIndex::scan(&root).unwrap();
    assert_eq!((src.identities(), src.read(1).unwrap().label, src.read(2).unwrap().label), (3, 1, 2));
    std::os::unix::fs::symlink(dir.join("gone"), root.join("d")).unwrap();
    let e = FolderIndex::scan(&root).err().unwrap().0;
    assert!(e.starts_with(&format!("{}: a link to nothing readable", root.join("d").display())), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
