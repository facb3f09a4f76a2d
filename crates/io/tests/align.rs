//! `norm_crop` against insightface's on the two hand-marked photographs of
//! test/fixtures/make_align_fixtures.py (OpenCV 4.x's fixed-point warp) and
//! make_align_float_fixtures.py (OpenCV 5.x's float warp, also at sizes 128 and 224); the random
//! landmark sets are in test/align.test.ts.

use maskfr_io::align::{norm_crop, Point, Warp};
use maskfr_io::image_codec::{decode, Dims, Rgb, MAX_SIDE};
use std::path::Path;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures").join(name)
}

fn read(n: &str) -> Rgb {
    decode(&std::fs::read(fixture(n)).unwrap(), n, Dims::AtMost(MAX_SIDE)).unwrap()
}

/// The hand-marked images and their landmarks, from the `name x1 y1 … x5 y5 score` file.
fn marked() -> Vec<(String, [Point; 5])> {
    let lines = std::fs::read_to_string(fixture("align_5pts_score.txt")).unwrap();
    lines
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let v: Vec<f64> = f[1..11].iter().map(|x| x.parse().unwrap()).collect();
            (f[0].to_string(), [0, 1, 2, 3, 4].map(|i| [v[2 * i], v[2 * i + 1]]))
        })
        .collect()
}

#[test]
fn hand_marked_photographs_crop_to_insightfaces_pixels_with_opencv_4() {
    for (name, lmk) in marked() {
        let ours = norm_crop(&read(&name), &lmk, 112, Warp::Fixed, &name).unwrap();
        assert_eq!(ours, read(&name.replace(".png", "_marked.png")), "{name}");
    }
}

#[test]
fn hand_marked_photographs_crop_to_insightfaces_pixels_with_opencv_5() {
    for (name, lmk) in marked() {
        for (size, suffix) in
            [(112, "_marked_float.png"), (128, "_marked_128_float.png"), (224, "_marked_224_float.png")]
        {
            let reference = name.replace(".png", suffix);
            if !fixture(&reference).exists() {
                continue; // one photograph at each of the other sizes
            }
            let ours = norm_crop(&read(&name), &lmk, size, Warp::Float, &name).unwrap();
            assert_eq!(ours, read(&reference), "{reference}");
            // The other warp is not the same: the comparison can fail.
            let other = norm_crop(&read(&name), &lmk, size, Warp::Fixed, &name).unwrap();
            assert_ne!(other, ours, "{reference}");
        }
    }
}
