use maskfr_core::kernels::conv::{conv2d_backward_input, conv2d_backward_weight, conv2d_forward, ConvGeom};
use std::time::Instant;
fn med(mut ts: Vec<f64>) -> f64 {
    ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    ts[0]
}
fn main() {
    let a: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().unwrap()).collect();
    let (c, o, hw, s, k, reps) = (a[0], a[1], a[2], a[3], a[4], a[5]);
    let p = k / 2;
    let g = ConvGeom::new(&[16, c, hw, hw], &[o, c, k, k], [s, s], [p, p]).unwrap();
    let x = vec![0.5f32; 16 * c * hw * hw];
    let w = vec![0.1f32; o * c * k * k];
    let mut y = vec![0f32; 16 * o * g.oh * g.ow];
    let mut gx = x.clone();
    let mut gw = w.clone();
    let fl = 2.0 * (16 * o * c * k * k * g.oh * g.ow) as f64 / 1e9;
    let time = |f: &mut dyn FnMut()| {
        f();
        med((0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect())
    };
    let only = std::env::var("ONLY").unwrap_or_default();
    if only.is_empty() || only == "fwd" {
        println!("fwd {:.1}", fl / time(&mut || conv2d_forward(&g, &x, &w, None, &mut y)));
    }
    let yy = y.clone();
    if only.is_empty() || only == "bwd_data" {
        println!("bwd_data {:.1}", fl / time(&mut || conv2d_backward_input(&g, &yy, &w, &mut gx)));
    }
    if only.is_empty() || only == "bwd_weight" {
        println!("bwd_weight {:.1}", fl / time(&mut || conv2d_backward_weight(&g, &yy, &x, &mut gw)));
    }
}
