//! `norm_crop` against insightface's on the two hand-marked photographs of
//! test/fixtures/make_align_fixtures.py (the random landmark sets are in test/align.test.ts).

use maskfr_io::align::norm_crop;
use maskfr_io::image_codec::{decode, Dims, MAX_SIDE};
use std::path::Path;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures").join(name)
}

#[test]
fn hand_marked_photographs_crop_to_insightfaces_pixels() {
    let lines = std::fs::read_to_string(fixture("align_5pts_score.txt")).unwrap();
    for line in lines.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let v: Vec<f64> = f[1..11].iter().map(|x| x.parse().unwrap()).collect();
        let lmk = [0, 1, 2, 3, 4].map(|i| [v[2 * i], v[2 * i + 1]]);
        let read = |n: &str| decode(&std::fs::read(fixture(n)).unwrap(), n, Dims::AtMost(MAX_SIDE)).unwrap();
        let ours = norm_crop(&read(f[0]), &lmk, 112, f[0]).unwrap();
        let theirs = read(&f[0].replace(".png", "_marked.png"));
        assert_eq!(ours, theirs, "{}", f[0]);
    }
}
