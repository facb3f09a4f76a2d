//! The CUDA C kernel sources, compiled at run time by NVRTC. Each file names the CPU
//! reference it must agree with; `common.cuh` (index helpers, deterministic block sums) is
//! put in front of every source instead of an include NVRTC would have to resolve.

const COMMON: &str = include_str!("../kernels/common.cuh");

/// (module name, source) of every kernel file.
pub const KERNELS: [(&str, &str); 10] = [
    ("elementwise", include_str!("../kernels/elementwise.cu")),
    ("batchnorm", include_str!("../kernels/batchnorm.cu")),
    ("prelu", include_str!("../kernels/prelu.cu")),
    ("reduce", include_str!("../kernels/reduce.cu")),
    ("l2norm", include_str!("../kernels/l2norm.cu")),
    ("random", include_str!("../kernels/random.cu")),
    ("rows", include_str!("../kernels/rows.cu")),
    ("loss", include_str!("../kernels/loss.cu")),
    ("margin", include_str!("../kernels/margin.cu")),
    ("sgd", include_str!("../kernels/sgd.cu")),
];

/// Module `name`'s complete source (the shared header inlined), or None.
pub fn source(name: &str) -> Option<String> {
    let (_, body) = KERNELS.iter().find(|(n, _)| *n == name)?;
    let common = COMMON.replace("#pragma once", "");
    Some(body.replace("#include \"common.cuh\"", &common))
}

/// The `extern "C" __global__` functions a module defines, in source order.
pub fn kernel_names(name: &str) -> Vec<String> {
    let Some((_, body)) = KERNELS.iter().find(|(n, _)| *n == name) else { return Vec::new() };
    body.split("extern \"C\" __global__ void ")
        .skip(1)
        .filter_map(|rest| rest.split('(').next().map(|s| s.trim().to_string()))
        .collect()
}
