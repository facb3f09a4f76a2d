// The stand-in for what maskfr's .cu kernels take from CUDA, so the same sources compile as
// C++ for the CPU: the thread and block indices (per emulated thread, set by runtime.cpp),
// __syncthreads (a barrier of the block's fibers), dynamic shared memory (build.rs turns
// `extern __shared__ T name[];` into a pointer to the launch's guarded shared buffer),
// atomicAdd, the bit casts and f16/bf16 conversions common.cuh declares, CUDA's math overloads.
#pragma once
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <math.h>

#define MASKFR_EMULATED 1
#define __global__
#define __device__
#define __forceinline__ inline

struct dim3 {
    unsigned x, y, z;
};

namespace emu {
// The emulated thread now running on this OS thread (runtime.cpp switches it).
struct Thread {
    dim3 thread, block, block_dim, grid_dim;
};
extern thread_local Thread current;
void syncthreads();
void* shared();

// One kernel as build.rs generated it: a trampoline that unpacks cuLaunchKernel's parameter
// array by the kernel's signature, and that signature (for the launch's checks and reports).
struct Kernel {
    const char* module;
    const char* name;
    void (*trampoline)(void** params);
    int barriers;  // uses __syncthreads or shared memory: its threads run as fibers
    int params;
    const unsigned* sizes;
    const char* const* decls;
};
}  // namespace emu

#define threadIdx (emu::current.thread)
#define blockIdx (emu::current.block)
#define blockDim (emu::current.block_dim)
#define gridDim (emu::current.grid_dim)

inline void __syncthreads() { emu::syncthreads(); }

template <class T>
inline T* emu_shared() {
    return static_cast<T*>(emu::shared());
}

// Blocks of one launch run one after another and a block's threads as fibers of one OS
// thread, so these need no hardware atomics; std::atomic_ref keeps them right if blocks ever
// run in parallel.
inline float atomicAdd(float* p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }
inline double atomicAdd(double* p, double v) { return std::atomic_ref<double>(*p).fetch_add(v); }
inline int atomicAdd(int* p, int v) { return std::atomic_ref<int>(*p).fetch_add(v); }

inline double __longlong_as_double(unsigned long long v) {
    double d;
    std::memcpy(&d, &v, 8);
    return d;
}
inline float __uint_as_float(unsigned v) {
    float f;
    std::memcpy(&f, &v, 4);
    return f;
}
inline unsigned __float_as_uint(float f) {
    unsigned v;
    std::memcpy(&v, &f, 4);
    return v;
}

// CUDA's integer min/max overloads (device code calls them unqualified).
inline int min(int a, int b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }

// The PTX conversions of common.cuh (cvt.rn.f16.f32, cvt.f32.f16, cvt.rn.bf16.f32): IEEE
// round to nearest even, NaN kept quiet, as the hardware does.
inline unsigned short f32_to_f16_bits(float f) {
    unsigned x = __float_as_uint(f), sign = (x >> 16) & 0x8000u, e = (x >> 23) & 0xff, m = x & 0x7fffffu;
    if (e == 0xff) return (unsigned short)(sign | 0x7c00u | (m ? 0x200u | (m >> 13) : 0));
    int exp = (int)e - 127 + 15;
    if (exp >= 31) return (unsigned short)(sign | 0x7c00u);
    if (exp <= 0) {
        if (exp < -10) return (unsigned short)sign;
        m |= 0x800000u;
        unsigned shift = (unsigned)(14 - exp), half = m >> shift, rest = m & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rest > mid || (rest == mid && (half & 1))) half++;
        return (unsigned short)(sign | half);
    }
    unsigned h = sign | ((unsigned)exp << 10) | (m >> 13), rest = m & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++;  // a carry into the exponent is right
    return (unsigned short)h;
}

inline float f16_bits_to_f32(unsigned short h) {
    unsigned sign = (unsigned)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu;
    if (e == 0x1f) return __uint_as_float(sign | 0x7f800000u | (m << 13));
    if (e == 0) {
        float v = std::ldexp((float)m, -24);
        return sign ? -v : v;
    }
    return __uint_as_float(sign | ((e + 112) << 23) | (m << 13));
}

inline unsigned short f32_to_bf16_bits(float f) {
    unsigned x = __float_as_uint(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((x >> 16) | 0x40u);
    return (unsigned short)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}
