//! Convolutions computed directly (f32 on AVX-512): the forward at column stride 1 or 2 and
//! the stride-1 input gradient as tiles of up to 14 output positions × 32 channels, the
//! channels in vectors and each position's input value broadcast, so the input needs no
//! im2col panels, only a zero-padded copy of a band of rows that stays in L2, and the
//! weights one reordering per call; the 3×3 stride-2 input gradient as tiles of both
//! column parities; the 3×3 weight gradient as tiles of 9 taps × 32 channels summed over
//! every position. The implicit-GEMM path packs every input value into
//! a panel once per tap: a tenth to a fifth of a 3×3 conv at 14²–28² (profiled), which
//! these do not pay.

use super::ConvGeom;
use crate::Float;

#[cfg(target_arch = "x86_64")]
mod input_s2;
#[cfg(target_arch = "x86_64")]
mod layout;
#[cfg(target_arch = "x86_64")]
mod tiles;
#[cfg(target_arch = "x86_64")]
mod weight_grad;

/// Output channels (a tile's lanes, of 32) below which the implicit GEMM is faster: the
/// tiny IResNet's convs with 8 lose 20–40% direct, with 16 gain 5–30% (measured A/B). The
/// strided input gradient has no such floor: it beats the column matrix and fold even with
/// 8 channels (48 vs 18 GFLOP/s at 8→8 @112²).
#[cfg(target_arch = "x86_64")]
const MIN_LANES: usize = 16;

/// `y = conv(x, w) + bias` directly, when the geometry and the CPU allow; false (nothing
/// written) otherwise.
pub fn try_forward<T: Float>(g: &ConvGeom, x: &[T], w: &[T], bias: Option<&[T]>, y: &mut [T]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if usable::<T>(g) && g.o >= MIN_LANES {
        let weights = layout::Weights::forward(f32s(w), g.o, g.c, g.kh * g.kw);
        tiles::conv(g, f32s(x), &weights, bias.map(f32s), f32s_mut(y));
        return true;
    }
    let _ = (g, x, w, bias, y);
    false
}

/// The stride-1 input gradient of conv `g` from `gy`: the direct conv `gt` of `gy` with the
/// kernel flipped in space and transposed in channels; false (nothing written) when the
/// direct path does not apply.
pub fn try_backward_input<T: Float>(g: &ConvGeom, gt: &ConvGeom, gy: &[T], w: &[T], gx: &mut [T]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if usable::<T>(gt) && gt.o >= MIN_LANES {
        let weights = layout::Weights::flipped(f32s(w), g.o, g.c, g.kh * g.kw);
        tiles::conv(gt, f32s(gy), &weights, None, f32s_mut(gx));
        return true;
    }
    let _ = (g, gt, gy, w, gx);
    false
}

/// The input gradient of a 3×3 conv at stride 2, padding 1 (IResNet's downsampling)
/// directly; false (nothing written) when the direct path does not apply.
pub fn try_backward_input_strided<T: Float>(g: &ConvGeom, gy: &[T], w: &[T], gx: &mut [T]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if usable::<T>(g) && (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw) == (3, 3, 2, 2, 1, 1) {
        input_s2::input_grad_s2(g, f32s(gy), f32s(w), f32s_mut(gx));
        return true;
    }
    let _ = (g, gy, w, gx);
    false
}

/// `gw = Σ gy · X̂ᵀ` (the weight gradient) directly for 3×3 kernels; false (nothing
/// written) when the direct path does not apply.
pub fn try_backward_weight<T: Float>(g: &ConvGeom, gy: &[T], x: &[T], gw: &mut [T]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if usable::<T>(g) && (g.kh, g.kw) == (3, 3) && g.o >= MIN_LANES {
        weight_grad::weight_grad(g, f32s(gy), f32s(x), f32s_mut(gw));
        return true;
    }
    let _ = (g, gy, x, gw);
    false
}

/// f32 on AVX-512, column stride 1 or 2, a kernel of more than one tap (1×1 convs are
/// plain products, fast already), padding inside the kernel.
#[cfg(target_arch = "x86_64")]
fn usable<T: Float>(g: &ConvGeom) -> bool {
    std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && is_x86_feature_detected!("avx512f")
        && (1..=2).contains(&g.sw)
        && g.kh * g.kw > 1
        && g.ph < g.kh
        && g.pw < g.kw
        && g.c.max(g.o) * g.kh * g.kw * layout::OCB <= i32::MAX as usize
}

#[cfg(target_arch = "x86_64")]
fn f32s<T: Float>(v: &[T]) -> &[f32] {
    assert_eq!(std::any::TypeId::of::<T>(), std::any::TypeId::of::<f32>());
    // SAFETY: T is f32 (asserted).
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const f32, v.len()) }
}

#[cfg(target_arch = "x86_64")]
fn f32s_mut<T: Float>(v: &mut [T]) -> &mut [f32] {
    assert_eq!(std::any::TypeId::of::<T>(), std::any::TypeId::of::<f32>());
    // SAFETY: T is f32 (asserted).
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut f32, v.len()) }
}
