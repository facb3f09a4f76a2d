//! Looking at and timing the template synthesizer on real photographs.
//!
//! `template_look sheet OUT.png SCALE SEEDS SHAPES IMAGE[@x1,y1,…,x5,y5]...`: one row per
//! image (the original, then one mask per seed), enlarged SCALE× (nearest neighbour) so single
//! pixels show. SHAPES: `all`, `cycle` (column c draws the c-th of the five) or names separated by commas (surgical,n95,kn95,cloth,gas);
//! `--textures=DIR` among the images prints the user textures in DIR;
//! an image without landmarks is taken as an aligned 112×112-template face at its size.
//! `template_look bench`: template masks per second on one core on a 112² face, median of
//! seven 0.5 s rounds (the bench suite's loop: copy in, mask, copy out).

use maskfr_io::image_codec::{decode, encode_png, Dims, Rgb};
use maskfr_masks::template::SHAPES;
use maskfr_masks::{MaskShape, Point, TemplateSynth, Texture, ARCFACE_112};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("sheet") if args.len() >= 6 => sheet(&args[1], &args[2], &args[3], &args[4], &args[5..]),
        Some("bench") => bench(),
        _ => {
            eprintln!(
                "usage: template_look sheet OUT.png SCALE SEEDS SHAPES IMAGE[@10 numbers]... | template_look bench"
            );
            std::process::exit(2);
        }
    }
}

fn shapes(list: &str) -> Option<Vec<MaskShape>> {
    (list != "all" && list != "cycle")
        .then(|| list.split(',').map(|n| MaskShape::parse(n).unwrap_or_else(|e| panic!("{e}"))).collect())
}

fn load(spec: &str) -> (Rgb, [Point; 5]) {
    let (path, lm) = spec.split_once('@').map_or((spec, None), |(p, l)| (p, Some(l)));
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let img = decode(&bytes, path, Dims::AtMost(4096)).unwrap_or_else(|e| panic!("{e}"));
    let lm = match lm {
        Some(l) => {
            let v: Vec<f64> =
                l.split(',').map(|x| x.parse().unwrap_or_else(|_| panic!("{path}: landmark {x}"))).collect();
            assert_eq!(v.len(), 10, "{path}: 10 landmark numbers");
            [0, 1, 2, 3, 4].map(|i| [v[2 * i], v[2 * i + 1]])
        }
        None => ARCFACE_112.map(|p| [p[0] * img.width as f64 / 112.0, p[1] * img.height as f64 / 112.0]),
    };
    (img, lm)
}

fn sheet(out: &str, scale: &str, seeds: &str, shape_list: &str, images: &[String]) {
    let scale: usize = scale.parse().expect("SCALE");
    let seeds: u64 = seeds.parse().expect("SEEDS");
    // `--textures=DIR` among the images: every mask prints one of the textures there.
    let textures = images
        .iter()
        .filter_map(|a| a.strip_prefix("--textures="))
        .flat_map(|d| Texture::load_dir(Path::new(d)).unwrap_or_else(|e| panic!("{e}")))
        .map(Arc::new)
        .collect();
    let synth = TemplateSynth { shapes: shapes(shape_list), textures, ..TemplateSynth::default() };
    let faces: Vec<(Rgb, [Point; 5])> = images.iter().filter(|a| !a.starts_with("--")).map(|s| load(s)).collect();
    let cell = faces.iter().map(|f| f.0.width.max(f.0.height)).max().unwrap();
    let cols = seeds as usize + 1;
    let (w, h) = (cols * cell * scale, faces.len() * cell * scale);
    let mut sheet = Rgb { width: w, height: h, data: vec![255; w * h * 3] };
    for (row, (img, lm)) in faces.iter().enumerate() {
        for col in 0..cols {
            let mut face = img.clone();
            if col > 0 {
                // `cycle`: column c draws the c-th shape (of all five, in turn).
                let synth = if shape_list == "cycle" {
                    TemplateSynth { shapes: Some(vec![SHAPES[(col - 1) % SHAPES.len()]]), ..synth.clone() }
                } else {
                    synth.clone()
                };
                let info = synth.apply(&mut face, lm, col as u64 - 1 + 1000 * row as u64);
                println!("row {row} col {col}: {} {:?} {}", info.kind, info.color, info.pattern);
            }
            for y in 0..face.height * scale {
                for x in 0..face.width * scale {
                    let s = &face.data[((y / scale) * face.width + x / scale) * 3..][..3];
                    let o = ((row * cell * scale + y) * w + col * cell * scale + x) * 3;
                    sheet.data[o..o + 3].copy_from_slice(s);
                }
            }
        }
    }
    std::fs::write(out, encode_png(&sheet).expect("encode")).expect("write");
}

fn bench() {
    // A sharp face-like image (fine texture) and a soft one (smooth gradients, as an enlarged
    // small face, where the mask is also softened).
    let sharp: Vec<u8> = (0..112 * 112 * 3).map(|i: usize| (90 + (i * 7919 % 97)) as u8).collect();
    let soft: Vec<u8> =
        (0..112 * 112).flat_map(|i: usize| [100 + (i % 112) as u8, 80 + (i / 112) as u8, 120]).collect();
    let synth = TemplateSynth::default();
    for (what, face) in [("sharp", sharp), ("soft", soft)] {
        let mut rates = Vec::new();
        for _ in 0..7 {
            let (t0, mut n) = (Instant::now(), 0u64);
            while t0.elapsed().as_secs_f64() < 0.5 {
                let mut img = Rgb { width: 112, height: 112, data: face.clone() };
                synth.apply(&mut img, &ARCFACE_112, n);
                std::hint::black_box(img.data);
                n += 1;
            }
            rates.push(n as f64 / t0.elapsed().as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        let all: Vec<f64> = rates.iter().map(|r| r.round()).collect();
        println!("template synthesizer, 112² {what} face, 1 core: median {:.0} images/s (rounds {all:?})", rates[3]);
    }
}
