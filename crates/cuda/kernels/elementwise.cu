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

// y = a·s[0], the factor read on the device.
extern "C" __global__ void scale_by_f32(const float* a, const float* s, float* y, long long n) {
    const float k = s[0];
    GRID_STRIDE(i, n) y[i] = a[i] * k;
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

// y = g[0]·s everywhere (the backward of sum and mean; g stays on the device).
extern "C" __global__ void expand_scalar_f32(const float* g, double s, float* y, long long n) {
    GRID_STRIDE(i, n) y[i] = (float)(g[0] * s);
}

// Storage casts (common.cuh's conversions).
extern "C" __global__ void f32_to_f16(const float* x, unsigned short* y, long long n) {
    GRID_STRIDE(i, n) y[i] = f32_to_f16_bits(x[i]);
}

extern "C" __global__ void f16_to_f32(const unsigned short* x, float* y, long long n) {
    GRID_STRIDE(i, n) y[i] = f16_bits_to_f32(x[i]);
}

extern "C" __global__ void f32_to_bf16(const float* x, unsigned short* y, long long n) {
    GRID_STRIDE(i, n) y[i] = f32_to_bf16_bits(x[i]);
}

extern "C" __global__ void bf16_to_f32(const unsigned short* x, float* y, long long n) {
    GRID_STRIDE(i, n) y[i] = __uint_as_float((unsigned)x[i] << 16);
}
