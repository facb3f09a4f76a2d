use maskfr_core::kernels::gemm::Mat;
use maskfr_core::kernels::tiled::{gemm, DenseA, DenseB, DenseC};
use std::time::Instant;
fn main() {
    for &(m, k, n, threaded) in
        &[(256usize, 1024usize, 3072usize, false), (256, 1024, 3072, true), (512, 4608, 784, true)]
    {
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0f32; m * n];
        let mut best = f64::MAX;
        for _ in 0..7 {
            let t = Instant::now();
            gemm(&DenseA(Mat::new(&a, m, k)), &DenseB(Mat::new(&b, k, n)), &DenseC::new(&mut c, m, n), false, threaded);
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("{m}x{k}x{n} threaded={threaded}: {:.1} GF/s", 2.0 * (m * k * n) as f64 / best / 1e9);
    }
}
