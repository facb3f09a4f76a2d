//! What the emulated device reports through the backend's own launch and copy code: a kernel
//! reading past its buffer, a tensor's slack written, an argument of the wrong size, a copy
//! past a block, each an error naming the kernel (or copy) and the buffer, and the device
//! still usable afterwards. Runs under MASKFR_CUDA_EMULATE=1 (CI); skipped otherwise.

use maskfr_core::DType;
use maskfr_cuda::gpu::{elementwise, Arg, Gpu};

#[test]
fn faults_come_back_as_errors_naming_the_kernel_and_buffer() {
    if !maskfr_cuda::emulated::enabled() {
        eprintln!("skipped: {}=1 runs this", maskfr_cuda::emulated::VAR);
        return;
    }
    let gpu = Gpu::open(0).unwrap();
    // 1024 floats fill their 4 KiB block: one more is on the guard page.
    let ((_x, xp), (_y, yp)) = (gpu.empty(&[1024], DType::F32).unwrap(), gpu.empty(&[1024], DType::F32).unwrap());
    gpu.memset_zero(xp, 4096).unwrap();
    let n = 1025;
    let e = gpu
        .launch(
            "elementwise",
            "scale_f32",
            elementwise(n),
            &[Arg::Ptr(xp), Arg::F32(2.0), Arg::Ptr(yp), Arg::I64(n as i64)],
        )
        .unwrap_err()
        .0;
    assert!(
        e.contains("scale_f32: block (4,0,0) thread (0,0,0): invalid read, 0 bytes past the end of device memory"),
        "{e}"
    );
    assert!(e.contains("parameter 0 `const float* a`"), "{e}");
    // 1000 floats in a 4 KiB block: writing a 1001st lands in the slack.
    let (_z, zp) = gpu.empty(&[1000], DType::F32).unwrap();
    let e = gpu
        .launch("elementwise", "fill_f32", elementwise(1001), &[Arg::Ptr(zp), Arg::F32(1.0), Arg::I64(1001)])
        .unwrap_err()
        .0;
    assert!(
        e.contains(
            "fill_f32 wrote past the end of the tensor of parameter 0 `float* y`: byte 4000 of a 4000-byte tensor"
        ),
        "{e}"
    );
    // An i32 where the kernel takes a long long: what a GPU would read as garbage.
    let e = gpu
        .launch("elementwise", "fill_f32", elementwise(10), &[Arg::Ptr(zp), Arg::F32(1.0), Arg::I32(10)])
        .unwrap_err()
        .0;
    assert!(e.contains("fill_f32: argument 2 is 4 bytes, but `long long n` is 8"), "{e}");
    let e = gpu.copy_device(yp, xp, 8192).unwrap_err().0;
    assert!(e.contains("copy to: 8192 bytes at offset 0 of a 4096-byte block run 4096 bytes past its end"), "{e}");
    // Still usable: the same kernels, in bounds.
    gpu.launch("elementwise", "fill_f32", elementwise(1000), &[Arg::Ptr(zp), Arg::F32(3.0), Arg::I64(1000)]).unwrap();
    let mut back = vec![0u8; 4000];
    gpu.read(&mut back, zp).unwrap();
    assert!(back.chunks(4).all(|c| f32::from_ne_bytes(c.try_into().unwrap()) == 3.0));
}
