// Reductions; CPU reference in maskfr-core kernels/reduce.rs. Whole-tensor sums go through
// fixed-size blocks (partials[b] of block b), then one block sums the partials in order:
// the same result on every run.
#include "common.cuh"

extern "C" __global__ void sum_partials_f32(const float* x, double* partials, long long n, long long per_block, int squares) {
    extern __shared__ double scratch[];
    long long start = (long long)blockIdx.x * per_block, end = min(n, start + per_block);
    double acc = 0.0;
    for (long long i = start + threadIdx.x; i < end; i += blockDim.x) acc += squares ? (double)x[i] * x[i] : x[i];
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

extern "C" __global__ void sum_finish(const double* partials, int blocks, float* out) {
    extern __shared__ double scratch[];
    double acc = 0.0;
    for (int i = threadIdx.x; i < blocks; i += blockDim.x) acc += partials[i];
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) out[0] = (float)acc;
}

// out[c] = Σ over N and S of x[n, c, s] (bias gradients): block c.
extern "C" __global__ void channel_sum_f32(const float* x, float* out, int n, int c, long long s) {
    extern __shared__ double scratch[];
    const int ch = blockIdx.x;
    double acc = 0.0;
    for (long long i = threadIdx.x; i < (long long)n * s; i += blockDim.x) acc += x[((i / s) * c + ch) * s + i % s];
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) out[ch] = (float)acc;
}
