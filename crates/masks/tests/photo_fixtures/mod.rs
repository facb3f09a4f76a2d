//! The faces of test/fixtures/mask_photos (make_mask_photo_fixtures.py), for the coverage
//! tests and the contact-sheet example (which includes this file by path).

use maskfr_io::image_codec::{decode, Dims, Rgb};
use maskfr_masks::Point;
use std::path::{Path, PathBuf};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/mask_photos").join(name)
}

pub struct Photo {
    /// The image's file name: `<face>.png` (the crop), `<face>_112.png` (its alignment).
    pub name: String,
    pub img: Rgb,
    pub landmarks: [Point; 5],
    /// Degrees, positive when the face turns toward the image's right.
    pub yaw: f64,
}

/// landmarks.txt: `image x1 y1 … x5 y5 yaw`, each face's crop then its 112² alignment.
pub fn photos() -> Vec<Photo> {
    let path = fixture("landmarks.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .map(|(n, line)| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 12, "landmarks.txt line {}: {line}", n + 1);
            let v: Vec<f64> = f[1..]
                .iter()
                .map(|x| x.parse().unwrap_or_else(|_| panic!("landmarks.txt line {}: {x}", n + 1)))
                .collect();
            let bytes = std::fs::read(fixture(f[0])).unwrap_or_else(|e| panic!("{}: {e}", f[0]));
            let img = decode(&bytes, f[0], Dims::AtMost(256)).unwrap_or_else(|e| panic!("{e}"));
            Photo {
                name: f[0].to_string(),
                img,
                landmarks: [0, 1, 2, 3, 4].map(|i| [v[2 * i], v[2 * i + 1]]),
                yaw: v[10],
            }
        })
        .collect()
}
