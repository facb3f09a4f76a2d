//! The Rust .bin reader and writer: Python's own pickles (protocols 2 and 5, made by
//! test/fixtures/make_bin_fixtures.py) read as Python reads them, code-running opcodes refused,
//! and what the writer streams reads back the same.

use maskfr_io::verification_bin::{BinWriter, VerificationBin};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures").join(name)
}

#[test]
fn python_pickles_read_as_python_reads_them() {
    let want: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 10 + i as usize]).chain([vec![b'x'; 300]]).collect();
    for f in ["bin_py3.bin", "bin_py2.bin"] {
        let v = VerificationBin::read(&fixture(f)).unwrap();
        assert_eq!((0..v.len()).map(|i| v.image(i).to_vec()).collect::<Vec<_>>(), want, "{f}");
        assert_eq!(v.issame, [true, false], "{f}");
    }
}

#[test]
fn opcodes_that_could_run_code_are_refused_and_a_cut_file_is_named() {
    for f in ["bin_evil.bin", "bin_codecs.bin"] {
        let e = VerificationBin::read(&fixture(f)).err().unwrap().0;
        assert!(e.contains(&format!("{f}: not an InsightFace verification pickle: opcode GLOBAL at byte")), "{e}");
    }
    let cut = std::fs::read(fixture("bin_py3.bin")).unwrap()[..40].to_vec();
    let e = VerificationBin::parse(cut, "cut.bin").err().unwrap().0;
    assert!(e.contains("cut.bin: not an InsightFace verification pickle: truncated at byte"), "{e}");
}

#[test]
fn what_the_writer_streams_reads_back() {
    let dir = std::env::temp_dir().join(format!("maskfr-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("set.bin");
    // Short and long images (SHORT_BINBYTES and BINBYTES), bytes with pickle opcodes inside.
    let images: Vec<Vec<u8>> =
        (0..6u32).map(|i| (0..(i * 97 + 3) % 700).map(|k| (k * 31 + i) as u8).collect()).collect();
    let issame = [true, false, false];
    let mut w = BinWriter::create(&path).unwrap();
    images.iter().for_each(|b| w.image(b).unwrap());
    w.finish(&issame).unwrap();
    let v = VerificationBin::read(&path).unwrap();
    assert_eq!((0..v.len()).map(|i| v.image(i).to_vec()).collect::<Vec<_>>(), images);
    assert_eq!(v.issame, issame);
    // An odd image count for the pairs is refused, and nothing is left behind.
    let mut w = BinWriter::create(&dir.join("odd.bin")).unwrap();
    w.image(b"x").unwrap();
    assert!(w.finish(&[true]).err().unwrap().0.contains("1 images written for 1 pairs"));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
