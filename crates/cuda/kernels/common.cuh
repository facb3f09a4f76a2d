// Shared by every maskfr kernel: index helpers and a deterministic block reduction in double
// (a fixed tree, so a sum does not depend on timing; the CPU reference sums in f64 too).
#pragma once

#define GRID_STRIDE(i, n) for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long long)blockDim.x * gridDim.x)

// Sum of `v` over the block (blockDim.x a power of two ≤ 1024); the result is valid in
// thread 0. `scratch` holds blockDim.x doubles.
__device__ inline double block_sum(double v, double* scratch) {
    scratch[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) scratch[threadIdx.x] += scratch[threadIdx.x + s];
        __syncthreads();
    }
    double r = scratch[0];
    __syncthreads();
    return r;
}

__device__ inline double block_max(double v, double* scratch) {
    scratch[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) scratch[threadIdx.x] = fmax(scratch[threadIdx.x], scratch[threadIdx.x + s]);
        __syncthreads();
    }
    double r = scratch[0];
    __syncthreads();
    return r;
}

// The counter-based generator of maskfr-core's random.rs (SplitMix64): element i of stream
// `seed` is the same number on the GPU as on the CPU.
__device__ inline unsigned long long finalize(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

__device__ inline unsigned long long splitmix64(unsigned long long z) { return finalize(z + 0x9E3779B97F4A7C15ULL); }

// Uniform in [0, 1) with 53 bits.
__device__ inline double uniform(unsigned long long seed, unsigned long long i) {
    unsigned long long bits = splitmix64(splitmix64(seed) ^ (i * 0xD1B54A32D192ED03ULL));
    return (double)(bits >> 11) * (1.0 / 9007199254740992.0);
}

// f16/bf16 storage conversions as PTX (NVRTC ships no cuda_fp16.h, so 16-bit values travel
// as unsigned short), round to nearest even like the CPU's `half` crate. The emulated
// device's stand-in header (crates/cuda-emu/src/emu.h) defines the same three in C++.
#ifndef MASKFR_EMULATED
__device__ inline unsigned short f32_to_f16_bits(float x) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(x));
    return h;
}

__device__ inline float f16_bits_to_f32(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

__device__ inline unsigned short f32_to_bf16_bits(float x) {
    unsigned short h;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(x));
    return h;
}
#endif
