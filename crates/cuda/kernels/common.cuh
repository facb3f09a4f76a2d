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
