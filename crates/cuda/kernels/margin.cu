// Combined-margin logits (CosFace/ArcFace) and the sharded classifier's chunk step. CPU
// references: maskfr-core kernels/margin.rs (margin_logits, margin_chunk_stats,
// margin_softmax_total, margin_softmax_loss, margin_chunk_grad).
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
    if (isnan(c)) return c;  // fmin/fmax would drop it (the CPU's clamp keeps it)
    c = fmin(1.0, fmax(-1.0, c));
    return s * (is_target ? target_cos(c, m_arc) - m_cos : c);
}

// The sharded classifier's chunk step (cosines of scored columns [j0, j0 + w) as cos[b × w];
// target[i]: row i's target column among the scored ones, −1 when another rank's class).

// Per row (block i): fold the chunk's logits into the running max and max-shifted exp-sum
// (kept in f32 between chunks, summed in f64 within) and pick up the target's logit.
extern "C" __global__ void margin_chunk_stats(const float* cos_, const int* target, int w, int j0, double s, double m_arc, double m_cos, float* row_max, float* row_sum, float* target_logit) {
    extern __shared__ double scratch[];
    const int i = blockIdx.x;
    const float* row = cos_ + (long long)i * w;
    const int t = target[i];
    const double old = row_max[i];
    double m = old;
    for (int k = threadIdx.x; k < w; k += blockDim.x) m = fmax(m, logit(row[k], j0 + k == t, s, m_arc, m_cos));
    m = (float)block_max(m, scratch);  // as stored, so the exp-sum is relative to exactly that
    double acc = 0.0;
    for (int k = threadIdx.x; k < w; k += blockDim.x) acc += exp(logit(row[k], j0 + k == t, s, m_arc, m_cos) - m);
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) {
        // An unchanged maximum keeps the sum as it is: exp(old − m) would be NaN for −∞ − −∞
        // (fresh statistics and a chunk of no columns).
        row_sum[i] = (float)(row_sum[i] * (old == m ? 1.0 : exp(old - m)) + acc);
        row_max[i] = (float)m;
        if (t >= j0 && t < j0 + w) target_logit[i] = (float)logit(row[t - j0], true, s, m_arc, m_cos);
    }
}

// Each row's exp-sum against the global maximum.
extern "C" __global__ void margin_softmax_total(const float* row_max, const float* row_sum, const float* gmax, float* out, long long n) {
    GRID_STRIDE(i, n) out[i] = (float)(row_sum[i] * exp((double)row_max[i] - gmax[i]));
}

// One block: the mean over rows of gmax + ln gsum − target logit.
extern "C" __global__ void margin_softmax_loss(const float* gmax, const float* gsum, const float* target_logit, int b, float* out) {
    extern __shared__ double scratch[];
    double acc = 0.0;
    for (int i = threadIdx.x; i < b; i += blockDim.x) acc += (double)gmax[i] + log((double)gsum[i]) - target_logit[i];
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) out[0] = (float)(acc / b);
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
