//! Decompression bombs: a few hundred bytes whose header declares 13000² pixels are refused
//! from the header, before any pixel buffer is allocated, by the codec and by the loader.

use maskfr_io::folder::FolderIndex;
use maskfr_io::image_codec::{decode, encode_jpeg, encode_png, Dims, Rgb, MAX_SIDE};
use maskfr_io::loader::{epoch, LoaderConfig, Source};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SIDE: u16 = 13000;

fn small() -> Rgb {
    Rgb { width: 8, height: 8, data: vec![90; 8 * 8 * 3] }
}

/// PNG's chunk CRC (ISO 3309), for a header edited here.
fn crc32(bytes: &[u8]) -> u32 {
    !bytes
        .iter()
        .fold(!0u32, |c, &b| (0..8).fold(c ^ b as u32, |c, _| if c & 1 == 1 { (c >> 1) ^ 0xedb8_8320 } else { c >> 1 }))
}

/// An 8×8 PNG whose IHDR says 13000 × 13000 (CRC fixed, so only the size is wrong).
fn png_bomb() -> Vec<u8> {
    let mut png = encode_png(&small()).unwrap();
    assert_eq!(&png[12..16], b"IHDR");
    let side = (SIDE as u32).to_be_bytes();
    png[16..20].copy_from_slice(&side);
    png[20..24].copy_from_slice(&side);
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// An 8×8 baseline JPEG whose SOF0 says 13000 × 13000.
fn jpeg_bomb() -> Vec<u8> {
    let mut jpeg = encode_jpeg(&small(), 90).unwrap();
    let sof = jpeg.windows(2).position(|w| w == [0xff, 0xc0]).expect("a SOF0 marker");
    // FFC0, length (2), precision (1), height (2), width (2)
    jpeg[sof + 5..sof + 7].copy_from_slice(&SIDE.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&SIDE.to_be_bytes());
    jpeg
}

/// `f` must answer at once: decoding 13000² pixels first would not.
fn quick<T>(f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    assert!(t.elapsed() < Duration::from_millis(500), "took {:?}: the pixels were decoded", t.elapsed());
    out
}

#[test]
fn a_header_declaring_too_many_pixels_is_refused_before_decoding() {
    for (bytes, what) in [(png_bomb(), "bomb.png"), (jpeg_bomb(), "bomb.jpg")] {
        assert!(bytes.len() < 1000);
        let e = quick(|| decode(&bytes, what, Dims::AtMost(MAX_SIDE))).err().unwrap().0;
        assert_eq!(
            e,
            format!("{what}: the header declares 13000x13000 pixels, more than the 4096x4096 decoded at most")
        );
        let e = quick(|| decode(&bytes, what, Dims::Square(112))).err().unwrap().0;
        assert_eq!(e, format!("{what}: 13000x13000 image, expected 112x112 aligned faces"));
    }
    let ok = decode(&encode_png(&small()).unwrap(), "fine.png", Dims::Square(8)).unwrap();
    assert_eq!((ok.width, ok.height, ok.data.len()), (8, 8, 192));
}

#[test]
fn the_loader_refuses_a_bomb_from_its_header() {
    let dir = std::env::temp_dir().join(format!("maskfr-bomb-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(dir.join("a").join("bomb.png"), png_bomb()).unwrap();
    let src: Arc<dyn Source> = Arc::new(FolderIndex::scan(&dir).unwrap());
    let c = LoaderConfig {
        batch: 1,
        seed: 0,
        rank: 0,
        world: 1,
        shuffle: false,
        flip: false,
        size: 112,
        prefetch: 1,
        threads: 1,
        skip_corrupt: false,
        max_corrupt_share: 0.01,
    };
    let e = quick(|| epoch(src, None, &c, 0, 0).unwrap().next().unwrap().err().unwrap().0);
    assert!(e.ends_with("bomb.png: 13000x13000 image, expected 112x112 aligned faces"), "{e}");
}
