//! The emulator itself: kernels run as on a GPU (grid-stride loops over many blocks, block
//! sums through shared memory and barriers), and each fault it exists to catch is reported
//! with the kernel, the thread and the buffer (src/faults.cu holds the faulty kernels).

use maskfr_cuda_emu::{alloc, free, launch, mark};
use std::ffi::c_void;

struct Buf {
    ptr: u64,
}

impl Buf {
    fn new(values: &[f32], block: usize) -> Buf {
        let ptr = alloc(block).unwrap();
        mark(ptr, values.len() * 4).unwrap();
        // SAFETY: the allocation holds `block` ≥ len·4 bytes.
        unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), ptr as *mut f32, values.len()) };
        Buf { ptr }
    }
    fn values(&self, n: usize) -> Vec<f32> {
        // SAFETY: as in `new`.
        unsafe { std::slice::from_raw_parts(self.ptr as *const f32, n) }.to_vec()
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        free(self.ptr);
    }
}

fn p<T>(v: &T) -> *mut c_void {
    v as *const T as *mut c_void
}

#[test]
fn an_elementwise_kernel_over_many_blocks_and_a_block_sum() {
    let n = 100_003usize;
    let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
    let (x, y, out) = (Buf::new(&a, n * 4), Buf::new(&a, n * 4 + 512), Buf::new(&vec![0.0; n], n * 4));
    let len = n as i64;
    let blocks = n.div_ceil(256).min(65_535) as u32;
    // SAFETY: three live buffers of n floats.
    unsafe {
        launch(
            "elementwise",
            "add_f32",
            (blocks, 1, 1),
            (256, 1, 1),
            0,
            &[p(&x.ptr), p(&y.ptr), p(&out.ptr), p(&len)],
            &[8, 8, 8, 8],
        )
    }
    .unwrap();
    assert!(out.values(n).iter().zip(&a).all(|(o, a)| *o == 2.0 * a));
    let partials = Buf::new(&[0.0; 8], 64);
    let (per_block, squares) = (n.div_ceil(4) as i64, 0i32);
    // SAFETY: four partial sums of doubles fit in 64 bytes.
    unsafe {
        launch(
            "reduce",
            "sum_partials_f32",
            (4, 1, 1),
            (256, 1, 1),
            2048,
            &[p(&x.ptr), p(&partials.ptr), p(&len), p(&per_block), p(&squares)],
            &[8, 8, 8, 8, 4],
        )
    }
    .unwrap();
    // SAFETY: four doubles written by the kernel.
    let sums = unsafe { std::slice::from_raw_parts(partials.ptr as *const f64, 4) };
    let total: f64 = sums.iter().sum();
    assert_eq!(total, a.iter().map(|&v| v as f64).sum::<f64>());
}

#[test]
fn arguments_of_the_wrong_size_or_count_are_refused() {
    let n = 10i32;
    let x = Buf::new(&[1.0; 10], 512);
    // SAFETY: refused before anything runs.
    let e = unsafe {
        launch("elementwise", "fill_f32", (1, 1, 1), (256, 1, 1), 0, &[p(&x.ptr), p(&1f32), p(&n)], &[8, 4, 4])
    }
    .unwrap_err();
    assert!(e.contains("fill_f32: argument 2 is 4 bytes, but `long long n` is 8"), "{e}");
    let e = unsafe { launch("elementwise", "fill_f32", (1, 1, 1), (256, 1, 1), 0, &[p(&x.ptr)], &[8]) }.unwrap_err();
    assert!(e.contains("launched with 1 arguments, its signature has 3"), "{e}");
    let e = unsafe { launch("elementwise", "fill_f32", (1, 1, 1), (2048, 1, 1), 0, &[], &[]) }.unwrap_err();
    assert!(e.contains("launched with 0 arguments"), "{e}");
}

#[test]
fn an_access_past_a_buffer_names_the_kernel_thread_and_parameter() {
    // 1024 floats fill the block: element 1024 is on the guard page.
    let (x, y) = (Buf::new(&[1.0; 1024], 4096), Buf::new(&[0.0; 1024], 8192));
    let n = 1024i64;
    // SAFETY: the kernel's fault is caught and reported (what is tested).
    let e = unsafe {
        launch("faults", "past_the_end", (4, 1, 1), (256, 1, 1), 0, &[p(&x.ptr), p(&y.ptr), p(&n)], &[8, 8, 8])
    }
    .unwrap_err();
    assert!(
        e.contains("past_the_end: block (0,0,0) thread (0,0,0): invalid read, 0 bytes past the end of device memory"),
        "{e}"
    );
    assert!(e.contains("the buffer of parameter 0 `const float* x`"), "{e}");
    // A write into the block's slack (past the tensor, inside the allocator's rounding).
    let n = 1000i64;
    let y = Buf::new(&[0.0; 1000], 4096);
    let e = unsafe { launch("faults", "into_the_slack", (4, 1, 1), (256, 1, 1), 0, &[p(&y.ptr), p(&n)], &[8, 8]) }
        .unwrap_err();
    assert!(e.contains("into_the_slack wrote past the end of the tensor of parameter 0 `float* y`: byte 4000 of a 4000-byte tensor"), "{e}");
    // The launches after a fault run normally.
    an_elementwise_kernel_over_many_blocks_and_a_block_sum();
}

#[test]
fn a_missing_barrier_and_a_thread_leaving_early_are_caught() {
    let x = Buf::new(&[1.0; 512], 2048);
    let out = Buf::new(&[0.0], 512);
    let n = 512i32;
    // SAFETY: buffers as declared.
    unsafe { launch("faults", "racy_sum", (1, 1, 1), (256, 1, 1), 2048, &[p(&x.ptr), p(&out.ptr), p(&n)], &[8, 8, 4]) }
        .unwrap();
    // Thread 0 added slot 128 before thread 128 wrote it: shared memory's poison (NaN).
    assert!(out.values(1)[0].is_nan(), "racy sum gave {}", out.values(1)[0]);
    let y = Buf::new(&[0.0; 64], 512);
    let e = unsafe { launch("faults", "early_exit", (1, 1, 1), (64, 1, 1), 512, &[p(&y.ptr)], &[8]) }.unwrap_err();
    assert!(
        e.contains(
            "early_exit: block (0,0,0) thread (0,0,0) returned while other threads of its block wait at __syncthreads"
        ),
        "{e}"
    );
}
