//! Threads in reverse order (a process of its own: the order is global): a read of a lower
//! thread's shared slot without a barrier sees poison, where in order it happened to work.

use maskfr_cuda_emu::{alloc, free, launch, mark, set_reverse};
use std::ffi::c_void;

fn neighbours() -> Vec<f32> {
    let y = alloc(512).unwrap();
    mark(y, 64 * 4).unwrap();
    // SAFETY: y holds 64 floats; the kernel writes y[0..64).
    unsafe { launch("faults", "racy_neighbour", (1, 1, 1), (64, 1, 1), 512, &[&y as *const u64 as *mut c_void], &[8]) }
        .unwrap();
    // SAFETY: as above.
    let v = unsafe { std::slice::from_raw_parts(y as *const f32, 64) }.to_vec();
    free(y);
    v
}

#[test]
fn reverse_order_catches_reads_of_lower_threads_slots() {
    set_reverse(false);
    assert!(
        neighbours().iter().enumerate().all(|(i, &v)| v == i.saturating_sub(1) as f32),
        "in order, the race goes unseen"
    );
    set_reverse(true);
    let v = neighbours();
    assert!(v[1..].iter().all(|v| v.is_nan()), "in reverse, every read of a lower slot is poison: {v:?}");
}
