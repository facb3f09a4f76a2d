// Batch norm over [N, C, S]; CPU reference in maskfr-core kernels/batchnorm.rs. One block
// per channel for the statistics and the backward sums (double accumulation, sums around a
// shift as the CPU does); elementwise kernels for apply and dx.
#include "common.cuh"

// mean[c], var[c] (biased) of channel c: block c, blockDim a power of two.
extern "C" __global__ void bn_stats_f32(const float* x, float* mean, float* var, int n, int c, long long s) {
    extern __shared__ double scratch[];
    const int ch = blockIdx.x;
    const double k = x[(long long)ch * s];
    double a = 0.0, b = 0.0;
    for (long long i = threadIdx.x; i < (long long)n * s; i += blockDim.x) {
        double d = (double)x[((i / s) * c + ch) * s + i % s] - k;
        a += d;
        b += d * d;
    }
    a = block_sum(a, scratch);
    b = block_sum(b, scratch);
    if (threadIdx.x == 0) {
        double m = a / ((double)n * s);
        mean[ch] = (float)(k + m);
        var[ch] = (float)fmax(b / ((double)n * s) - m * m, 0.0);
    }
}

// Training: invstd from the batch variance, and the running statistics updated in place
// (PyTorch's rule: unbiased variance, `momentum` on the new value); m values per channel.
extern "C" __global__ void bn_finish_train_f32(const float* mean, const float* var, float* invstd, float* running_mean, float* running_var, int c, double momentum, double eps, double m) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double unbias = m > 1.0 ? m / (m - 1.0) : 1.0;
    invstd[ch] = (float)(1.0 / sqrt((double)var[ch] + eps));
    running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean[ch]);
    running_var[ch] = (float)((1.0 - momentum) * running_var[ch] + momentum * var[ch] * unbias);
}

// Evaluation: invstd from the running variance.
extern "C" __global__ void bn_invstd_f32(const float* var, float* invstd, int c, double eps) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch < c) invstd[ch] = (float)(1.0 / sqrt((double)var[ch] + eps));
}

// y = (x − mean)·invstd·w + b
extern "C" __global__ void bn_apply_f32(const float* x, const float* mean, const float* invstd, const float* w, const float* bias, float* y, long long total, int c, long long s) {
    GRID_STRIDE(i, total) {
        int ch = (i / s) % c;
        y[i] = (x[i] - mean[ch]) * (invstd[ch] * w[ch]) + bias[ch];
    }
}

// Σ gy and Σ gy·x̂ per channel → gbias, gweight.
extern "C" __global__ void bn_backward_sums_f32(const float* gy, const float* x, const float* mean, const float* invstd, float* gweight, float* gbias, int n, int c, long long s) {
    extern __shared__ double scratch[];
    const int ch = blockIdx.x;
    const double m = mean[ch], is = invstd[ch];
    double sg = 0.0, sgx = 0.0;
    for (long long i = threadIdx.x; i < (long long)n * s; i += blockDim.x) {
        long long at = ((i / s) * c + ch) * s + i % s;
        sg += gy[at];
        sgx += (double)gy[at] * ((double)x[at] - m) * is;
    }
    sg = block_sum(sg, scratch);
    sgx = block_sum(sgx, scratch);
    if (threadIdx.x == 0) {
        gbias[ch] = (float)sg;
        gweight[ch] = (float)sgx;
    }
}

// dx with batch statistics (training) or constants (eval: batch_stats = 0).
extern "C" __global__ void bn_backward_dx_f32(const float* gy, const float* x, const float* mean, const float* invstd, const float* w, const float* gweight, const float* gbias, float* gx, long long total, int c, long long s, int batch_stats) {
    const double inv_m = (double)c / (double)total;
    GRID_STRIDE(i, total) {
        int ch = (i / s) % c;
        float is = invstd[ch];
        if (batch_stats) {
            float sg = (float)(gbias[ch] * inv_m), sgx = (float)(gweight[ch] * inv_m);
            gx[i] = w[ch] * is * (gy[i] - sg - (x[i] - mean[ch]) * is * sgx);
        } else {
            gx[i] = gy[i] * w[ch] * is;
        }
    }
}
