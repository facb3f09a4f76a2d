//! OpenCV 5's `warpAffine(img, m, size, INTER_LINEAR, BORDER_CONSTANT, 0)` on 8-bit RGB, as
//! measured against opencv-python 5.1.0: equal on every fixture crop
//! (test/fixtures/make_align_float_fixtures.py); on 310 random norm_crop cases 77 of 21M values
//! (0.0004%) are off by one, positions OpenCV rounds to the neighbouring float32.
//! OpenCV 5 replaced 4.x's fixed-point 8-bit path with float kernels. Each destination pixel's
//! source position is the inverse map evaluated in double and rounded to float32; its floor
//! picks the 2×2 neighbours and the float32 remainder weighs them, two horizontal fused
//! multiply-adds (`p00 + α·(p01 − p00)`, one rounding each) and a vertical one, then rounding
//! half to even and saturation to 0…255. A neighbour outside the image counts as 0.

use crate::image_codec::Rgb;

/// The float warp of `img` by `m` (source → destination, inverted as OpenCV inverts it).
pub fn warp_affine_float(img: &Rgb, m: &[f64; 6], width: usize, height: usize) -> Rgb {
    let inv = super::invert(m);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has FMA (checked just above), all `with_fma` asks for.
        return unsafe { with_fma(img, &inv, width, height) };
    }
    // Elsewhere `mul_add` is still one rounding (an instruction on aarch64, libm's fmaf on an
    // x86 without FMA): slower, the same pixels.
    warp(img, &inv, width, height)
}

/// `warp` compiled with FMA instructions, so that `mul_add` is one instruction, not a call.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn with_fma(img: &Rgb, inv: &[f64; 6], width: usize, height: usize) -> Rgb {
    warp(img, inv, width, height)
}

#[inline(always)]
fn warp(img: &Rgb, inv: &[f64; 6], width: usize, height: usize) -> Rgb {
    let mut out = vec![0u8; width * height * 3];
    if width == 0 || height == 0 {
        return Rgb { width, height, data: out };
    }
    let (w, h) = (img.width as i64, img.height as i64);
    let (src, stride) = (&img.data, img.width * 3);
    for (y, row) in out.chunks_exact_mut(width * 3).enumerate() {
        let (rx, ry) = (inv[1] * y as f64, inv[4] * y as f64);
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            let sx = (inv[0] * x as f64 + rx + inv[2]) as f32;
            let sy = (inv[3] * x as f64 + ry + inv[5]) as f32;
            let (fx, fy) = (sx.floor(), sy.floor());
            let (a, b) = (sx - fx, sy - fy);
            // `as` saturates (and takes NaN to 0, where the weights then make the pixel 0).
            let (ix, iy) = (fx as i64, fy as i64);
            let blend = |p: [f32; 4]| {
                let top = a.mul_add(p[1] - p[0], p[0]);
                let bottom = a.mul_add(p[3] - p[2], p[2]);
                // `as` saturates to 0…255 (and takes NaN to 0).
                b.mul_add(bottom - top, top).round_ties_even() as u8
            };
            if ix >= 0 && iy >= 0 && ix + 1 < w && iy + 1 < h {
                // The 2×2 block as two 6-byte rows: indexing them needs no bounds checks.
                let o = (iy * w + ix) as usize * 3;
                let (top, bottom) = (&src[o..o + 6], &src[o + stride..o + stride + 6]);
                for (c, v) in px.iter_mut().enumerate() {
                    *v = blend([top[c], top[c + 3], bottom[c], bottom[c + 3]].map(f32::from));
                }
            } else if ix + 1 >= 0 && iy + 1 >= 0 && ix < w && iy < h {
                let taps = [(ix, iy), (ix + 1, iy), (ix, iy + 1), (ix + 1, iy + 1)];
                let at =
                    taps.map(|(tx, ty)| (tx >= 0 && ty >= 0 && tx < w && ty < h).then(|| (ty * w + tx) as usize * 3));
                for (c, v) in px.iter_mut().enumerate() {
                    *v = blend(at.map(|o| o.map_or(0.0, |o| src[o + c] as f32)));
                }
            }
        }
    }
    Rgb { width, height, data: out }
}
