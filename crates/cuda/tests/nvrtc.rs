//! Every kernel module compiles through NVRTC, GPU or not (libnvrtc ships in pip's
//! nvidia-cuda-nvrtc wheel). Without libnvrtc the test is skipped with the reason, unless
//! MASKFR_REQUIRE_NVRTC=1 (CI sets it, GPU or not) or MASKFR_REQUIRE_GPU=1 makes a missing
//! compiler a failure.

mod common;

use common::{or_skip, REQUIRE_GPU};
use maskfr_cuda::{compile, kernel_names, require, supported_archs, Image, Target, KERNELS};

#[test]
fn every_kernel_module_compiles_to_ptx_and_to_cubins() {
    if or_skip(require("nvrtc"), &["MASKFR_REQUIRE_NVRTC", REQUIRE_GPU]).is_none() {
        return;
    }
    let archs = supported_archs().unwrap();
    for arch in [80, 90] {
        assert!(archs.contains(&arch), "NVRTC cannot compile for sm_{arch} (it knows {archs:?})");
    }
    for (name, _) in KERNELS {
        let Image::Ptx(text) = compile(name, Target::Ptx).unwrap_or_else(|e| panic!("{e}")) else {
            panic!("{name}.cu: not PTX")
        };
        for k in kernel_names(name) {
            assert!(text.contains(&format!(".entry {k}(")), "{name}.cu: no entry point {k} in the PTX");
        }
        // What a GPU opens with (the GPU's own architecture): ELF images, no JIT needed.
        for arch in [80, 90] {
            let Image::Cubin(bytes) = compile(name, Target::Cubin(arch)).unwrap_or_else(|e| panic!("{e}")) else {
                panic!("{name}.cu for sm_{arch}: not a cubin")
            };
            assert_eq!(&bytes[..4], b"\x7fELF", "{name}.cu for sm_{arch}: not an ELF cubin");
            for k in kernel_names(name) {
                assert!(bytes.windows(k.len()).any(|w| w == k.as_bytes()), "{name}.cu for sm_{arch}: no symbol {k}");
            }
        }
    }
}

#[test]
fn a_source_error_comes_back_with_the_log_and_a_missing_library_is_named() {
    assert!(maskfr_cuda::source("nope").is_none());
    let e = require("cudnn").err().map(|e| e.0).unwrap_or_default();
    if !e.is_empty() {
        assert!(e.contains("libcudnn (convolutions) not found; tried libcudnn.so"), "{e}");
    }
    assert_eq!(kernel_names("sgd"), ["sgd_multi_f32", "clip_gate", "loss_scale_update"]);
}

#[test]
fn a_cuda_tensor_without_a_gpu_is_a_clear_error() {
    maskfr_cuda::install();
    let report = maskfr_cuda::probe();
    if report.libraries[0].loaded.is_some() {
        return;
    }
    let e = maskfr_core::Tensor::zeros(&[2]).to(maskfr_core::Device::Cuda(0)).unwrap_err().to_string();
    assert!(e.starts_with("to: cuda:0: cuda: libcuda (driver) not found; tried libcuda.so"), "{e}");
    // Asked again, the same answer (the failure is kept, nothing is retried or leaked).
    let again = maskfr_core::Tensor::zeros(&[2]).to(maskfr_core::Device::Cuda(0)).unwrap_err().to_string();
    assert_eq!(e, again);
}
