// Row gather and scatter along dimension 0; CPU reference in maskfr-core kernels/rows.rs.
#include "common.cuh"

// out[i, :] = x[idx[i], :]
extern "C" __global__ void index_rows_f32(const float* x, const int* idx, float* out, long long width, long long n) {
    GRID_STRIDE(e, n) out[e] = x[(long long)idx[e / width] * width + e % width];
}

// out[idx[i], :] += x[i, :] into a zeroed out (exact when the indices are distinct, as the
// routing that uses it makes them).
extern "C" __global__ void scatter_rows_f32(const float* x, const int* idx, float* out, long long width, long long n) {
    GRID_STRIDE(e, n) atomicAdd(&out[(long long)idx[e / width] * width + e % width], x[e]);
}

// out[idx[i], :] = x[i, :] in place (one shard's rows of a gradient).
extern "C" __global__ void copy_rows_f32(const float* x, const int* idx, float* out, long long width, long long n) {
    GRID_STRIDE(e, n) out[(long long)idx[e / width] * width + e % width] = x[e];
}
