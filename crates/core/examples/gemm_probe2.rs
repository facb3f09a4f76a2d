use maskfr_core::kernels::gemm::{matmul, Mat};
use std::time::Instant;
fn main() {
    for &(m, k, n, reps) in &[
        (12usize, 128usize, 32usize, 200000usize),
        (384, 128, 32, 10000),
        (384, 128, 512, 1000),
        (384, 1024, 512, 100),
    ] {
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0f32; m * n];
        let t = Instant::now();
        for _ in 0..reps {
            matmul(Mat::new(&a, m, k), Mat::new(&b, k, n), &mut c, true, false);
        }
        let s = t.elapsed().as_secs_f64();
        println!("{m}x{k}x{n} single thread: {:.1} GF/s", 2.0 * (m * k * n * reps) as f64 / s / 1e9);
    }
}
