// The fused multi-tensor SGD update (momentum, L2 weight decay, torch semantics): one launch
// for every parameter. CPU reference in maskfr-core kernels/optim.rs.
//   b = momentum·b + g + wd·p;  p −= lr·b
// Tensor t spans elements [offsets[t], offsets[t+1]) of the launch; params[t], grads[t],
// bufs[t] point at its three buffers.
extern "C" __global__ void sgd_multi_f32(float** params, float** grads, float** bufs, const long long* offsets, int tensors, float lr, float momentum, float weight_decay) {
    const long long total = offsets[tensors];
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long long)blockDim.x * gridDim.x) {
        int lo = 0, hi = tensors - 1;  // the tensor holding element i
        while (lo < hi) {
            int mid = (lo + hi + 1) / 2;
            if (offsets[mid] <= i) lo = mid; else hi = mid - 1;
        }
        long long j = i - offsets[lo];
        float* p = params[lo];
        float* b = bufs[lo];
        b[j] = momentum * b[j] + grads[lo][j] + weight_decay * p[j];
        p[j] -= lr * b[j];
    }
}

// One tensor: the same rule.
extern "C" __global__ void sgd_f32(float* p, const float* g, float* b, float lr, float momentum, float weight_decay, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {
        b[i] = momentum * b[i] + g[i] + weight_decay * p[i];
        p[i] -= lr * b[i];
    }
}
