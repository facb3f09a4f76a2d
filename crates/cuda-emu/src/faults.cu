// Kernels that are wrong on purpose, for the emulator's own tests: each fault it must report.
#include "common.cuh"

// Reads and writes one element past n.
extern "C" __global__ void past_the_end(const float* x, float* y, long long n) {
    GRID_STRIDE(i, n + 1) y[i] = x[i];
}

// Writes one element past n: inside the block (the allocator's rounding), outside the tensor.
extern "C" __global__ void into_the_slack(float* y, long long n) {
    GRID_STRIDE(i, n + 1) y[i] = 1.0f;
}

// block_sum without its first barrier: thread 0 adds slots the others have not written yet.
extern "C" __global__ void racy_sum(const float* x, float* out, int n) {
    extern __shared__ double scratch[];
    double v = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) v += x[i];
    scratch[threadIdx.x] = v;
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) scratch[threadIdx.x] += scratch[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[0] = (float)scratch[0];
}

// Thread 0 leaves before the barrier the others wait at.
extern "C" __global__ void early_exit(float* y) {
    extern __shared__ double scratch[];
    if (threadIdx.x == 0) return;
    scratch[threadIdx.x] = 1.0;
    __syncthreads();
    y[threadIdx.x] = (float)scratch[threadIdx.x];
}

// Each thread reads its lower neighbour's slot with no barrier after the writes.
extern "C" __global__ void racy_neighbour(float* y) {
    extern __shared__ double scratch[];
    scratch[threadIdx.x] = threadIdx.x;
    y[threadIdx.x] = threadIdx.x == 0 ? 0.0f : (float)scratch[threadIdx.x - 1];
}
