//! Renders masks on faces for looking at them: reads lines `image.png x1 y1 … x5 y5 seed
//! half` (landmarks in ArcFace order, half 0 or 1) from the file named first, writes
//! `<out>/<n>.png` per line into the folder named second.
//!   cargo run --release -p maskfr-masks --example render_sheet -- list.txt /tmp/out
//! With `--time`: renders per second on one core at 112², landmarks jittered per image,
//! median of 7 rounds of 0.5 s.

use maskfr_core::random::uniform;
use maskfr_io::image_codec::Rgb;
use maskfr_io::image_codec::{decode, encode_png, Dims};
use maskfr_masks::{RenderSynth, ARCFACE_112};
use std::time::Instant;

fn time() {
    let face =
        Rgb { width: 112, height: 112, data: (0..112 * 112 * 3).map(|i| (uniform(1, i) * 255.0) as u8).collect() };
    let synth = RenderSynth { half_share: 0.2, ..RenderSynth::default() };
    let mut rates: Vec<f64> = (0..7)
        .map(|round| {
            let (t0, mut n) = (Instant::now(), 0u64);
            while t0.elapsed().as_secs_f64() < 0.5 {
                let mut img = face.clone();
                let j = |k: u64| 3.0 * (uniform(round, n * 10 + k) - 0.5);
                let lm = [0, 1, 2, 3, 4]
                    .map(|i| [ARCFACE_112[i][0] + j(2 * i as u64), ARCFACE_112[i][1] + j(2 * i as u64 + 1)]);
                synth.apply(&mut img, &lm, n);
                n += 1;
            }
            n as f64 / t0.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    println!("renderer: {:.0} images/s on one core (median of 7; rounds {:.0?})", rates[3], rates);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args[1] == "--time" {
        return time();
    }
    let (list, out) = (&args[1], &args[2]);
    for (n, line) in std::fs::read_to_string(list).expect("list").lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let mut img = decode(&std::fs::read(f[0]).expect("image"), f[0], Dims::AtMost(4096)).expect("decode");
        let x: Vec<f64> = f[1..11].iter().map(|v| v.parse().expect("number")).collect();
        let lm = [0, 1, 2, 3, 4].map(|i| [x[2 * i], x[2 * i + 1]]);
        let synth = RenderSynth { half_share: f[12].parse().expect("half"), ..RenderSynth::default() };
        let info = synth.apply(&mut img, &lm, f[11].parse().expect("seed"));
        println!("{n}: {} {} {:?}", info.kind, info.pattern, info.color);
        std::fs::write(format!("{out}/{n}.png"), encode_png(&img).expect("png")).expect("write");
    }
}
