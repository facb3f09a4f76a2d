// Per-channel PReLU over [N, C, S]; CPU reference in maskfr-core kernels/prelu.rs.
#include "common.cuh"

extern "C" __global__ void prelu_f32(const float* x, const float* alpha, float* y, long long total, int c, long long s) {
    GRID_STRIDE(i, total) {
        float v = x[i];
        y[i] = v > 0.f ? v : alpha[(i / s) % c] * v;
    }
}

extern "C" __global__ void prelu_backward_dx_f32(const float* gy, const float* x, const float* alpha, float* gx, long long total, int c, long long s) {
    GRID_STRIDE(i, total) gx[i] = x[i] > 0.f ? gy[i] : alpha[(i / s) % c] * gy[i];
}

// galpha[c] = Σ gy·x over x ≤ 0: block c.
extern "C" __global__ void prelu_backward_alpha_f32(const float* gy, const float* x, float* galpha, int n, int c, long long s) {
    extern __shared__ double scratch[];
    const int ch = blockIdx.x;
    double acc = 0.0;
    for (long long i = threadIdx.x; i < (long long)n * s; i += blockDim.x) {
        long long at = ((i / s) * c + ch) * s + i % s;
        if (x[at] <= 0.f) acc += (double)gy[at] * x[at];
    }
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) galpha[ch] = (float)acc;
}
