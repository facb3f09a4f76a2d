// Seeded inverted dropout; CPU reference in maskfr-core kernels/pointwise.rs. The same
// counter-based generator as maskfr-core's random.rs (SplitMix64), so a seed drops the same
// elements on the GPU as on the CPU.

__device__ inline unsigned long long finalize(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

__device__ inline unsigned long long splitmix64(unsigned long long z) { return finalize(z + 0x9E3779B97F4A7C15ULL); }

// Uniform in [0, 1) with 53 bits: element i of stream `seed`.
__device__ inline double uniform(unsigned long long seed, unsigned long long i) {
    unsigned long long bits = splitmix64(splitmix64(seed) ^ (i * 0xD1B54A32D192ED03ULL));
    return (double)(bits >> 11) * (1.0 / 9007199254740992.0);
}

// y = x·scale_i, scale_i = 0 with probability p else 1/(1−p); mask keeps scale_i for backward.
extern "C" __global__ void dropout_f32(const float* x, float* y, float* mask, unsigned long long seed, double p, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {
        float k = uniform(seed, (unsigned long long)i) < p ? 0.f : (float)(1.0 / (1.0 - p));
        mask[i] = k;
        y[i] = x[i] * k;
    }
}
