//! The buffer pool: a freed large kernel output is handed out again, zeroed; buffers made
//! elsewhere are not kept; the pool never outgrows the peak of live bytes.

use maskfr_core::{memory, pool, Tensor};

#[test]
fn freed_outputs_come_back_zeroed_and_the_pool_stays_bounded() {
    let shape = [3, 512, 1024]; // 6 MiB
    let first = Tensor::filled(&shape, |v| v.iter_mut().enumerate().for_each(|(i, x)| *x = i as f32 + 1.0));
    drop(first);
    assert_eq!(pool::cached_bytes(), 6 << 20);
    let again = Tensor::zeros(&shape);
    assert_eq!(pool::cached_bytes(), 0, "the same length is reused");
    assert!(again.to_vec().iter().all(|&x| x == 0.0), "reused buffers are zeroed");
    drop(again);
    drop(Tensor::from_vec(vec![1.0; 3 << 20], &[3 << 20]).unwrap());
    assert_eq!(pool::cached_bytes(), 6 << 20, "buffers made outside the pool are freed");
    assert!(pool::cached_bytes() <= memory::stats().peak_bytes);
    pool::empty();
    assert_eq!(pool::cached_bytes(), 0);
}
