//! RecordIO: the independent Python writer's file read back exactly; our writer's output
//! read with and without its index; the magic-word split; and every bad input named.

use maskfr_io::image_codec::{decode, encode_jpeg, Dims, Rgb, MAX_SIDE};
use maskfr_io::recordio::{frame, pack, unpack, Header, RecordFile, RecordWriter, MAGIC};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures").join(name)
}

fn tmpdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("maskfr-io-{}-{:?}", std::process::id(), std::thread::current().id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn reads_a_rec_written_by_an_independent_writer() {
    let expected = std::fs::read_to_string(fixture("recordio_expected.txt")).unwrap();
    for idx in [Some(fixture("recordio_small.idx")), None] {
        let f = RecordFile::open(&fixture("recordio_small.rec"), idx.as_deref()).unwrap();
        assert_eq!(f.index().len(), 10);
        let (h0, _) = unpack(&f.read_key(0).unwrap(), "record 0").unwrap();
        assert_eq!((h0.flag, h0.labels.clone()), (2, vec![7.0, 10.0]), "image range header");
        for line in expected.lines() {
            let v: Vec<&str> = line.split(' ').collect();
            let key: u64 = v[0].parse().unwrap();
            let payload = f.read_key(key).unwrap();
            let (h, body) = unpack(&payload, "image").unwrap();
            assert_eq!((h.flag, h.label, h.id), (0, v[1].parse::<f32>().unwrap(), key));
            if key == 3 {
                assert_eq!(h.id2, MAGIC as u64, "the split record is rejoined with its magic word");
            }
            let img = decode(body, "image", Dims::AtMost(MAX_SIDE)).unwrap();
            let hex: String = img.data.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(
                (img.width.to_string(), img.height.to_string(), hex),
                (v[2].into(), v[3].into(), v[4].to_string())
            );
        }
        let (hi, _) = unpack(&f.read_key(8).unwrap(), "identity").unwrap();
        assert_eq!(hi.labels, vec![3.0, 5.0], "identity 1 owns images 3 and 4");
    }
}

#[test]
fn frames_split_at_aligned_magic_words_only() {
    let m = MAGIC.to_le_bytes();
    let mut payload = vec![1u8, 2, 3, 4];
    payload.extend_from_slice(&m); // aligned: split
    payload.extend_from_slice(&[9, 9]);
    payload.extend_from_slice(&m); // at offset 10: not aligned, kept
    payload.push(5);
    let mut out = Vec::new();
    frame(&payload, &mut out).unwrap();
    assert_eq!(out.len() % 4, 0);
    assert_eq!(u32::from_le_bytes(out[4..8].try_into().unwrap()) >> 29, 1, "first part");
    let dir = tmpdir();
    let mut w = RecordWriter::create(&dir.join("a.rec"), &dir.join("a.idx")).unwrap();
    for (k, p) in [(0u64, payload.clone()), (1, m.to_vec()), (2, vec![]), (3, [m, m].concat())] {
        w.write(k, &p).unwrap();
    }
    w.finish().unwrap();
    for idx in [Some(dir.join("a.idx")), None] {
        let f = RecordFile::open(&dir.join("a.rec"), idx.as_deref()).unwrap();
        assert_eq!(f.read_key(0).unwrap(), payload);
        assert_eq!(f.read_key(1).unwrap(), m.to_vec());
        assert_eq!(f.read_key(2).unwrap(), Vec::<u8>::new());
        assert_eq!(f.read_key(3).unwrap(), [m, m].concat());
    }
}

#[test]
fn pack_and_jpeg_round_trip() {
    // Smooth, as photographs are: the encoder halves the chroma resolution (4:2:0, as PIL).
    let img = Rgb {
        width: 16,
        height: 8,
        data: (0..16 * 8 * 3).map(|i| ((i / 3 % 16) * 6 + i / 48 * 8 + i % 3 * 50) as u8).collect(),
    };
    let jpeg = encode_jpeg(&img, 95).unwrap();
    let h = Header::vector(vec![3.0, 1.5], 42);
    let payload = pack(&h, &jpeg);
    let (back, body) = unpack(&payload, "r").unwrap();
    assert_eq!(back, h);
    assert_eq!(body, &jpeg[..]);
    let dec = decode(body, "r", Dims::AtMost(16)).unwrap();
    assert_eq!((dec.width, dec.height), (16, 8));
    let err = dec.data.iter().zip(&img.data).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
    assert!(err < 40, "JPEG at quality 95 stays close to the source (max |Δ| {err})");
}

#[test]
fn bad_inputs_name_the_file_and_the_place() {
    let dir = tmpdir();
    let rec = std::fs::read(fixture("recordio_small.rec")).unwrap();
    let p = dir.join("cut.rec");
    std::fs::write(&p, &rec[..rec.len() - 10]).unwrap();
    let e = RecordFile::open(&p, None).err().unwrap().0;
    assert!(e.contains("cut.rec: record at offset") && e.contains("truncated"), "{e}");

    let mut bad = rec.clone();
    bad[0] ^= 0xff;
    let p = dir.join("magic.rec");
    std::fs::write(&p, &bad).unwrap();
    let e = RecordFile::open(&p, None).err().unwrap().0;
    assert!(e.contains("magic.rec: offset 0: bad magic 0xced723f5 (expected 0xced7230a)"), "{e}");

    let idx = dir.join("far.idx");
    std::fs::write(&idx, "0\t0\n1\t999999\n").unwrap();
    let e = RecordFile::open(&fixture("recordio_small.rec"), Some(&idx)).err().unwrap().0;
    assert!(e.contains("far.idx: line 2: offset 999999 is past the end of") && e.contains("(1676 bytes)"), "{e}");

    // 2^64 − 1 + 8 wraps to 7 in u64: the check must not.
    std::fs::write(&idx, "0\t0\n1\t18446744073709551615\n").unwrap();
    let e = RecordFile::open(&fixture("recordio_small.rec"), Some(&idx)).err().unwrap().0;
    assert!(e.contains("far.idx: line 2: offset 18446744073709551615 is past the end of"), "{e}");

    let e = decode(&[0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2, 3], "rec record 5", Dims::AtMost(MAX_SIDE)).err().unwrap().0;
    assert!(e.starts_with("rec record 5: corrupt image"), "{e}");
    let e = decode(b"hello world", "x.jpg", Dims::AtMost(MAX_SIDE)).err().unwrap().0;
    assert_eq!(e, "x.jpg: 11 bytes that are neither JPEG nor PNG");
    let e = unpack(&[1, 2, 3], "record 9").err().unwrap().0;
    assert_eq!(e, "record 9: 3 bytes, shorter than the 24-byte IRHeader");
}

#[test]
fn keys_in_any_order_are_found_and_an_unfinished_writer_leaves_nothing() {
    let d = tmpdir().join("order");
    std::fs::create_dir_all(&d).unwrap();
    let (rec, idx) = (d.join("o.rec"), d.join("o.idx"));
    let mut w = RecordWriter::create(&rec, &idx).unwrap();
    for (i, key) in [5u64, 2, 9, 2].into_iter().enumerate() {
        w.write(key, &pack(&Header::scalar(key as f32, key), &[i as u8; 4])).unwrap();
    }
    let e = w.rewrite_first(&pack(&Header::vector(vec![1.0, 2.0], 0), &[])).unwrap_err().0;
    assert!(e.ends_with("o.rec: the first record is 36 bytes framed, its replacement 40"), "{e}");
    w.finish().unwrap();
    let f = RecordFile::open(&rec, Some(&idx)).unwrap();
    for key in [2u64, 5, 9] {
        assert_eq!(unpack(&f.read_key(key).unwrap(), "r").unwrap().0.id, key);
    }
    assert_eq!(f.read_key(2).unwrap()[24..], [1; 4], "a repeated key reads its first record");
    assert!(f.read_key(3).unwrap_err().0.ends_with("o.rec: no record with key 3"));
    let unfinished = RecordWriter::create(&d.join("u.rec"), &d.join("u.idx")).unwrap();
    drop(unfinished);
    let mut left: Vec<_> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name()).collect();
    left.sort();
    assert_eq!(left, ["o.idx", "o.rec"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn identity_ranges_from_the_file_are_whole_keys_inside_the_image_range() {
    use maskfr_io::recordio::Layout;
    let d = tmpdir();
    // InsightFace's layout: record 0 [1, a) images and [a, b) identities; then each identity's range.
    let layout = |head: [f32; 2], ids: &[[f32; 2]]| {
        let rec = d.join("ranges.rec");
        let mut w = RecordWriter::create(&rec, &rec.with_extension("idx")).unwrap();
        w.write(0, &pack(&Header::vector(head.to_vec(), 0), b"")).unwrap();
        for k in 1..3u64 {
            w.write(k, &pack(&Header::scalar(0.0, k), b"img")).unwrap();
        }
        for (i, r) in ids.iter().enumerate() {
            w.write(3 + i as u64, &pack(&Header::vector(r.to_vec(), 3 + i as u64), b"")).unwrap();
        }
        w.finish().unwrap();
        Layout::of(&RecordFile::open(&rec, None).unwrap()).map(|l| l.identities).map_err(|e| e.0)
    };
    assert_eq!(layout([3.0, 5.0], &[[1.0, 2.0], [2.0, 3.0]]).unwrap(), Some(vec![(1, 2), (2, 3)]));
    let e = layout([3.0, 5.0], &[[1.0, 7.0]]).unwrap_err();
    assert!(e.ends_with("record 3: identity images [1, 7) outside the image range [1, 3)"), "{e}");
    for bad in [[f32::NAN, 2.0], [2.0, 1.0], [-1.0, 2.0], [1.5, 2.0], [1.0, 1e30]] {
        let e = layout([3.0, 5.0], &[bad]).unwrap_err();
        assert!(e.contains("record 3: the range") && e.ends_with("is not one of record keys"), "{bad:?}: {e}");
    }
    let e = layout([f32::INFINITY, 5.0], &[]).unwrap_err();
    assert!(e.ends_with("record 0: the range [inf, 5) is not one of record keys"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}
