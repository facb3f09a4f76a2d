// Seeded random tensors and dropout; CPU references in maskfr-core random.rs and
// kernels/random.rs. The generator is common.cuh's copy of the CPU one, so a seed gives
// the same values (randn to within libm's last bits) and drops the same elements.
#include "common.cuh"

// y = x·scale_i, scale_i = 0 with probability p else 1/(1−p) (the backward is the same call
// on the gradient: the mask is a function of the seed).
extern "C" __global__ void dropout_f32(const float* x, float* y, unsigned long long seed, double p, long long n) {
    GRID_STRIDE(i, n) y[i] = x[i] * (uniform(seed, (unsigned long long)i) < p ? 0.f : (float)(1.0 / (1.0 - p)));
}

// Box–Muller on the uniforms (2j, 2j+1), j = offset + i.
extern "C" __global__ void randn_f32(float* y, unsigned long long seed, unsigned long long offset, double mean, double std_, long long n) {
    GRID_STRIDE(i, n) {
        unsigned long long j = offset + (unsigned long long)i;
        double u1 = 1.0 - uniform(seed, 2 * j), u2 = uniform(seed, 2 * j + 1);
        y[i] = (float)(mean + std_ * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
}

extern "C" __global__ void uniform_f32(float* y, unsigned long long seed, double lo, double hi, long long n) {
    GRID_STRIDE(i, n) y[i] = (float)(lo + (hi - lo) * uniform(seed, (unsigned long long)i));
}
