// The fused multi-tensor SGD update (momentum, L2 weight decay, torch semantics) and its
// gate. CPU reference in maskfr-core kernels/sgd.rs.
//   k = *gate (1 without one; not finite: nothing changes)
//   b = momentum·b + k·g + wd·p;  p −= lr·b
// Tensor t spans elements [offsets[t], offsets[t+1]) of the launch; params[t], grads[t],
// bufs[t] point at its three buffers.
extern "C" __global__ void sgd_multi_f32(float** params, float** grads, float** bufs, const long long* offsets, int tensors, float lr, float momentum, float weight_decay, const float* gate) {
    const float k = gate == nullptr ? 1.0f : *gate;
    if (!isfinite(k)) return;
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
        b[j] = momentum * b[j] + k * grads[lo][j] + weight_decay * p[j];
        p[j] -= lr * b[j];
    }
}

// 1/scale · min(1, max_norm / (√sumsq / scale + 1e-6)) (scale 1 without one); NaN when sumsq
// is not finite.
extern "C" __global__ void clip_gate(const float* sumsq, const float* scale, double max_norm, float* gate) {
    if (threadIdx.x != 0) return;  // launched as one block: one thread writes
    double s = *sumsq, inv = scale == nullptr ? 1.0 : 1.0 / (double)*scale;
    *gate = isfinite(s) ? (float)(inv * fmin(1.0, max_norm / (sqrt(s) * inv + 1e-6))) : nanf("");
}

// GradScaler's update of [scale, good steps, overflowed steps] after a step gated by *gate.
extern "C" __global__ void loss_scale_update(const float* gate, float* scale, float* good, float* overflows, double growth, double backoff, int interval) {
    // Launched as one block: one update per step, not one per thread racing on the state.
    if (threadIdx.x != 0) return;
    if (isfinite(*gate)) {
        *good += 1.0f;
        if (*good >= (float)interval) {
            *scale = (float)(*scale * growth);
            *good = 0.0f;
        }
    } else {
        *scale = (float)(*scale * backoff);
        *good = 0.0f;
        *overflows += 1.0f;
    }
}
