// Combined-margin logits (CosFace/ArcFace) and the sharded classifier's chunk step. CPU
// references: maskfr-core kernels/loss.rs (margin_logits) and maskfr-dist partial_fc.rs
// (the chunk step, whose cosines of classes [j0, j0 + w) arrive from cuBLAS as cos[b × w]).
#include "common.cuh"

__device__ inline double target_cos(double c, double m) {
    if (m == 0.0) return c;
    if (c > cos(3.14159265358979323846 - m)) return c * cos(m) - sqrt(fmax(1.0 - c * c, 0.0)) * sin(m);
    return c - m * sin(m);
}

__device__ inline double target_slope(double c, double m) {
    if (m == 0.0 || c <= cos(3.14159265358979323846 - m)) return 1.0;
    return cos(m) + c / sqrt(fmax(1.0 - c * c, 1e-12)) * sin(m);
}

__device__ inline double logit(double c, bool is_target, double s, double m_arc, double m_cos) {
    c = fmin(1.0, fmax(-1.0, c));
    return s * (is_target ? target_cos(c, m_arc) - m_cos : c);
}

// Per row (block i): fold this chunk's logits into the online (max, Σexp) and pick up the
// target's logit when its column is in the chunk. target[i] is the row's target column
// among the scored ones, −1 when it is another rank's class.
extern "C" __global__ void margin_chunk_stats(const float* cos_, const int* target, int w, int j0, double s, double m_arc, double m_cos, double* row_max, double* row_sum, float* target_logit) {
    extern __shared__ double scratch[];
    const int i = blockIdx.x;
    const float* row = cos_ + (long long)i * w;
    const int t = target[i];
    double m = __longlong_as_double(0xfff0000000000000ULL);  // −∞
    for (int k = threadIdx.x; k < w; k += blockDim.x) m = fmax(m, logit(row[k], j0 + k == t, s, m_arc, m_cos));
    m = fmax(row_max[i], block_max(m, scratch));
    double acc = 0.0;
    for (int k = threadIdx.x; k < w; k += blockDim.x) acc += exp(logit(row[k], j0 + k == t, s, m_arc, m_cos) - m);
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) {
        row_sum[i] = row_sum[i] * exp(row_max[i] - m) + acc;
        row_max[i] = m;
        if (t >= j0 && t < j0 + w) target_logit[i] = (float)logit(row[t - j0], true, s, m_arc, m_cos);
    }
}

// d loss / d cos for the chunk: s·slope·(p − onehot)/B with the global max and exp-sum.
extern "C" __global__ void margin_chunk_grad(const float* cos_, const int* target, int w, int j0, int batch, double s, double m_arc, double m_cos, const float* gmax, const float* gsum, float* gcos) {
    const long long n = (long long)batch * w;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (long long)blockDim.x * gridDim.x) {
        int i = e / w, k = e % w;
        bool is_t = j0 + k == target[i];
        double c = cos_[e];
        double p = exp(logit(c, is_t, s, m_arc, m_cos) - gmax[i]) / gsum[i];
        double slope = fabs(c) > 1.0 ? 0.0 : (is_t ? target_slope(c, m_arc) : 1.0);
        gcos[e] = (float)(s * slope * (p - (is_t ? 1.0 : 0.0)) / batch);
    }
}

// y = s·cos off target, s·(target_cos(cos, m_arc) − m_cos) on target, cosines clamped.
extern "C" __global__ void margin_logits_f32(const float* cos_, const int* labels, float* y, int r, int k, double s, double m_arc, double m_cos) {
    GRID_STRIDE(e, (long long)r * k) y[e] = (float)logit(cos_[e], e % k == labels[e / k], s, m_arc, m_cos);
}

// gx = s·slope·gy, zero where the cosine was clamped.
extern "C" __global__ void margin_logits_backward_f32(const float* gy, const float* cos_, const int* labels, float* gx, int r, int k, double s, double m_arc) {
    GRID_STRIDE(e, (long long)r * k) {
        double c = cos_[e];
        double slope = fabs(c) > 1.0 ? 0.0 : (e % k == labels[e / k] ? target_slope(c, m_arc) : 1.0);
        gx[e] = (float)(s * slope * gy[e]);
    }
}
