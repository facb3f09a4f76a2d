// Row-wise log-softmax and cross-entropy; CPU reference in maskfr-core kernels/loss.rs.
// One block per row, double accumulation like the CPU.
#include "common.cuh"

extern "C" __global__ void log_softmax_f32(const float* x, float* y, int k) {
    extern __shared__ double scratch[];
    const long long at = (long long)blockIdx.x * k;
    double m = __longlong_as_double(0xfff0000000000000ULL);
    for (int j = threadIdx.x; j < k; j += blockDim.x) m = fmax(m, (double)x[at + j]);
    m = block_max(m, scratch);
    double s = 0.0;
    for (int j = threadIdx.x; j < k; j += blockDim.x) s += exp((double)x[at + j] - m);
    double lse = m + log(block_sum(s, scratch));
    for (int j = threadIdx.x; j < k; j += blockDim.x) y[at + j] = (float)((double)x[at + j] - lse);
}

// gx = gy − exp(y)·Σgy
extern "C" __global__ void log_softmax_backward_f32(const float* gy, const float* y, float* gx, int k) {
    extern __shared__ double scratch[];
    const long long at = (long long)blockIdx.x * k;
    double s = 0.0;
    for (int j = threadIdx.x; j < k; j += blockDim.x) s += gy[at + j];
    s = block_sum(s, scratch);
    for (int j = threadIdx.x; j < k; j += blockDim.x) gx[at + j] = (float)((double)gy[at + j] - exp((double)y[at + j]) * s);
}

// loss = −mean over rows of logp[i, label_i]: one block.
extern "C" __global__ void nll_mean_f32(const float* logp, const int* labels, float* loss, int r, int k) {
    extern __shared__ double scratch[];
    double s = 0.0;
    for (int i = threadIdx.x; i < r; i += blockDim.x) s += logp[(long long)i * k + labels[i]];
    s = block_sum(s, scratch);
    if (threadIdx.x == 0) loss[0] = (float)(-s / r);
}

// gx = g·(softmax − onehot)/R with g the upstream gradient (on the device).
extern "C" __global__ void cross_entropy_backward_f32(const float* logp, const int* labels, const float* g, float* gx, int r, int k) {
    const double scale = (double)g[0] / r;
    GRID_STRIDE(e, (long long)r * k) {
        int i = e / k, j = e % k;
        gx[e] = (float)(scale * (exp((double)logp[e]) - (j == labels[i] ? 1.0 : 0.0)));
    }
}
