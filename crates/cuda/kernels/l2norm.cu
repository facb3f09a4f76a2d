// Row-wise L2 normalisation of [R, D] (torch's F.normalize); CPU reference in maskfr-core
// kernels/l2norm.rs. One block per row.
#include "common.cuh"

extern "C" __global__ void l2_normalize_f32(const float* x, float* y, int d, float eps) {
    extern __shared__ double scratch[];
    const float* xr = x + (long long)blockIdx.x * d;
    float* yr = y + (long long)blockIdx.x * d;
    double ss = 0.0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) ss += (double)xr[j] * xr[j];
    ss = block_sum(ss, scratch);
    float inv = (float)(1.0 / fmax(sqrt(ss), (double)eps));
    for (int j = threadIdx.x; j < d; j += blockDim.x) yr[j] = xr[j] * inv;
}

// gx = (gy − ŷ·(ŷ·gy)) / ‖x‖ where ‖x‖ > eps, else gy / eps.
extern "C" __global__ void l2_normalize_backward_f32(const float* gy, const float* x, float* gx, int d, float eps) {
    extern __shared__ double scratch[];
    const long long at = (long long)blockIdx.x * d;
    double ss = 0.0, dot = 0.0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        ss += (double)x[at + j] * x[at + j];
        dot += (double)x[at + j] * gy[at + j];
    }
    ss = block_sum(ss, scratch);
    dot = block_sum(dot, scratch);
    double norm = sqrt(ss);
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        gx[at + j] = norm <= eps ? (float)(gy[at + j] / eps) : (float)((gy[at + j] - x[at + j] * dot / (norm * norm)) / norm);
    }
}
