//! JPEGs decode to the pixels libjpeg-turbo gives with its defaults, as PIL and OpenCV do:
//! fixtures written and decoded by PIL (test/fixtures/make_jpeg_fixtures.py, which also
//! checks OpenCV against PIL) are matched to the last bit; the PNGs holding PIL's pixels are
//! checked against its CRC too; CMYK, 12-bit, truncated and many-scan JPEGs are refused by name.

use maskfr_io::image_codec::{decode, Dims, MAX_SIDE};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures").join(name)
}

/// zlib's CRC-32, as the fixture script lists it.
fn crc32(bytes: &[u8]) -> u32 {
    !bytes
        .iter()
        .fold(!0u32, |c, &b| (0..8).fold(c ^ b as u32, |c, _| if c & 1 == 1 { (c >> 1) ^ 0xedb8_8320 } else { c >> 1 }))
}

#[test]
fn jpegs_decode_to_pils_pixels_exactly() {
    let expected = std::fs::read_to_string(fixture("jpeg_expected.txt")).unwrap();
    assert_eq!(expected.lines().count(), 10);
    for line in expected.lines() {
        let v: Vec<&str> = line.split(' ').collect();
        let (name, w, h) = (v[0], v[1].parse::<usize>().unwrap(), v[2].parse::<usize>().unwrap());
        let png = decode(&std::fs::read(fixture(&format!("jpeg_{name}.png"))).unwrap(), name, Dims::AtMost(MAX_SIDE))
            .unwrap();
        assert_eq!(format!("{:08x}", crc32(&png.data)), v[3], "{name}.png: PNG decoding differs from PIL's pixels");
        let jpg = decode(&std::fs::read(fixture(&format!("jpeg_{name}.jpg"))).unwrap(), name, Dims::AtMost(MAX_SIDE))
            .unwrap();
        assert_eq!((jpg.width, jpg.height), (w, h), "{name}");
        let diff: Vec<i32> = jpg.data.iter().zip(&png.data).map(|(a, b)| (*a as i32 - *b as i32).abs()).collect();
        let off = diff.iter().filter(|d| **d != 0).count();
        assert!(
            off == 0,
            "{name}: {off} of {} values differ from PIL's, by up to {}",
            diff.len(),
            diff.iter().max().unwrap()
        );
    }
}

#[test]
fn cmyk_and_12_bit_jpegs_are_refused_by_name() {
    let e = decode(&std::fs::read(fixture("jpeg_cmyk.jpg")).unwrap(), "c.jpg", Dims::AtMost(MAX_SIDE)).err().unwrap().0;
    assert_eq!(e, "c.jpg: a CMYK JPEG, not decoded: convert it to RGB");
    let e =
        decode(&std::fs::read(fixture("jpeg_12bit.jpg")).unwrap(), "t.jpg", Dims::AtMost(MAX_SIDE)).err().unwrap().0;
    assert_eq!(e, "t.jpg: a 12-bit JPEG, not decoded: only 8-bit JPEGs are");
}

#[test]
fn a_truncated_jpeg_is_refused_not_filled_with_grey() {
    let bytes = std::fs::read(fixture("jpeg_s420.jpg")).unwrap();
    let e = decode(&bytes[..bytes.len() / 2], "cut.jpg", Dims::AtMost(MAX_SIDE)).err().unwrap().0;
    assert_eq!(e, "cut.jpg: corrupt image (TurboJPEG error: Premature end of JPEG file)");
}

#[test]
fn a_progressive_jpeg_of_too_many_scans_is_refused() {
    let bytes = std::fs::read(fixture("jpeg_progressive.jpg")).unwrap();
    let sos = bytes.windows(2).rposition(|w| w == [0xff, 0xda]).expect("a last scan");
    let last_scan = &bytes[sos..bytes.len() - 2];
    let mut many = bytes[..bytes.len() - 2].to_vec();
    for _ in 0..600 {
        many.extend_from_slice(last_scan);
    }
    many.extend_from_slice(&[0xff, 0xd9]);
    let e = decode(&many, "scans.jpg", Dims::AtMost(MAX_SIDE)).err().unwrap().0;
    assert_eq!(e, "scans.jpg: corrupt image (TurboJPEG error: Progressive JPEG image has more than 500 scans)");
}
