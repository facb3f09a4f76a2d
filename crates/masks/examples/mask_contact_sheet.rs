//! The README's sheet of masks on real faces (docs/masks-on-real-faces.png): one row per face
//! of test/fixtures/mask_photos, ordered by yaw, each on its ArcFace 112² crop with its own
//! landmarks moved there (as the loader masks a packed dataset with landmarks), enlarged 2×
//! by nearest neighbour so single pixels show. Columns: the plain face; the template
//! synthesizer's five shapes (surgical, N95, KN95, cloth, gas); the renderer's full mask (two
//! seeds) and half mask.
//!
//! cargo run --release -p maskfr-masks --example mask_contact_sheet [-- OUT.png]

#[path = "../tests/photo_fixtures/mod.rs"]
mod photo_fixtures;

use maskfr_io::image_codec::{encode_png, Rgb};
use maskfr_masks::{MaskShape, RenderSynth, TemplateSynth};

const SCALE: usize = 2;
const S: usize = 112 * SCALE;
/// Grey lines between tiles, wider between the plain face, the template and the renderer.
const GAP: usize = 2;
const GROUP_GAP: usize = 8;
const SHAPES: [MaskShape; 5] = [MaskShape::Surgical, MaskShape::N95, MaskShape::Kn95, MaskShape::Cloth, MaskShape::Gas];

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/masks-on-real-faces.png").to_string());
    let mut faces: Vec<_> = photo_fixtures::photos().into_iter().filter(|p| p.name.ends_with("_112.png")).collect();
    faces.sort_by(|a, b| a.yaw.total_cmp(&b.yaw));
    let full = RenderSynth { half_share: 0.0, ..Default::default() };
    let half = RenderSynth { half_share: 1.0, ..Default::default() };
    // Column x offsets: plain | 5 template shapes | 2 full + 1 half rendered.
    let groups = [1, SHAPES.len(), 3];
    let mut xs = Vec::new();
    let mut x = GAP;
    for (g, &n) in groups.iter().enumerate() {
        for _ in 0..n {
            xs.push(x);
            x += S + GAP;
        }
        if g + 1 < groups.len() {
            x += GROUP_GAP - GAP;
        }
    }
    let (w, h) = (x, GAP + faces.len() * (S + GAP));
    let mut sheet = Rgb { width: w, height: h, data: vec![90; w * h * 3] };
    for (row, face) in faces.iter().enumerate() {
        let seed = |col: usize| (row * 16 + col) as u64;
        let mut tiles = vec![face.img.clone()];
        for (k, &shape) in SHAPES.iter().enumerate() {
            let mut img = face.img.clone();
            TemplateSynth { shapes: Some(vec![shape]), ..Default::default() }.apply(
                &mut img,
                &face.landmarks,
                seed(1 + k),
            );
            tiles.push(img);
        }
        for (k, synth) in [&full, &full, &half].into_iter().enumerate() {
            let mut img = face.img.clone();
            synth.apply(&mut img, &face.landmarks, seed(6 + k));
            tiles.push(img);
        }
        let y0 = GAP + row * (S + GAP);
        for (tile, &x0) in tiles.iter().zip(&xs) {
            assert_eq!((tile.width, tile.height), (112, 112), "{}: not a 112² crop", face.name);
            for y in 0..S {
                for x in 0..S {
                    let src = ((y / SCALE) * 112 + x / SCALE) * 3;
                    let dst = ((y0 + y) * w + x0 + x) * 3;
                    sheet.data[dst..dst + 3].copy_from_slice(&tile.data[src..src + 3]);
                }
            }
        }
        println!("row {}: {} (yaw {:+.0}°)", row + 1, face.name.trim_end_matches("_112.png"), face.yaw);
    }
    let png = encode_png(&sheet).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&out, &png).unwrap_or_else(|e| panic!("{out}: {e}"));
    println!(
        "wrote {out}: {} faces × (plain, 5 template shapes, 2 rendered full, 1 half), {w}×{h}, {} KiB",
        faces.len(),
        png.len() / 1024
    );
}
