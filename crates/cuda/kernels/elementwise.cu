// Elementwise ops; CPU references in maskfr-core kernels/elementwise.rs.
#include "common.cuh"

extern "C" __global__ void add_f32(const float* a, const float* b, float* y, long long n) {
    GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}

extern "C" __global__ void mul_f32(const float* a, const float* b, float* y, long long n) {
    GRID_STRIDE(i, n) y[i] = a[i] * b[i];
}

extern "C" __global__ void scale_f32(const float* a, float s, float* y, long long n) {
    GRID_STRIDE(i, n) y[i] = a[i] * s;
}

// acc += s·a (gradient accumulation).
extern "C" __global__ void add_scaled_f32(float* acc, const float* a, float s, long long n) {
    GRID_STRIDE(i, n) acc[i] += s * a[i];
}

// y[n, c, :] = x[n, c, :] + v[c] over [N, C, S].
extern "C" __global__ void add_channel_f32(const float* x, const float* v, float* y, long long n, int c, long long s) {
    GRID_STRIDE(i, n) y[i] = x[i] + v[(i / s) % c];
}

extern "C" __global__ void fill_f32(float* y, float v, long long n) {
    GRID_STRIDE(i, n) y[i] = v;
}
