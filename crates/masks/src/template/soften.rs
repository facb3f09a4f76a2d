//! A mask no sharper than its photograph: many face crops are small faces enlarged (soft),
//! where a crisp procedural mask would stand out. What was drawn (the mask and the shadow band
//! outside its edge, so the edge softens both ways) is blurred by a 3-tap separable kernel
//! whose weight follows the photo's own sharpness.

use maskfr_io::image_codec::Rgb;

/// Mean |Laplacian| (0–255 levels) of the photo's luminance on every other pixel of every
/// other row: about 1–2 on an enlarged, soft crop, 4 and more on a sharp one.
pub fn sharpness(img: &Rgb) -> f64 {
    let lum = |x: usize, y: usize| {
        let p = &img.data[(y * img.width + x) * 3..][..3];
        0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
    };
    let (mut sum, mut n) = (0.0, 0usize);
    for y in (1..img.height.saturating_sub(1)).step_by(2) {
        for x in (1..img.width.saturating_sub(1)).step_by(2) {
            let around = lum(x - 1, y) + lum(x + 1, y) + lum(x, y - 1) + lum(x, y + 1);
            sum += (lum(x, y) - 0.25 * around).abs();
            n += 1;
        }
    }
    if n > 0 {
        sum / n as f64
    } else {
        4.0
    }
}

/// The side taps' weight of the kernel [w, 1 − 2w, w] for a photo this sharp (its variance
/// 2w matches a Gaussian of σ up to 0.75 px on the softest photos; none from 3.2 up).
pub fn weight(sharpness: f64) -> f64 {
    let sigma = ((3.2 - sharpness) / 2.2).clamp(0.0, 0.75);
    0.5 * sigma * sigma
}

/// Blurs the pixels of the region (`x0..x1` × `y0..y1`) marked in `drawn` (row-major over the
/// region) by [w, 1 − 2w, w] across then down: nothing outside what was drawn changes.
pub fn soften(img: &mut Rgb, region: [usize; 4], drawn: &[bool], w: f64) {
    let [x0, x1, y0, y1] = region;
    let (rw, rh) = (x1 - x0, y1 - y0);
    if w < 0.01 || rw < 3 || rh < 3 {
        return;
    }
    let at = |img: &Rgb, x: usize, y: usize, k: usize| img.data[(y * img.width + x) * 3 + k] as f64;
    // Across: over the whole region (the pass down needs the rows above and below).
    let mut across = vec![0.0f64; rw * rh * 3];
    for y in 0..rh {
        for x in 0..rw {
            let (l, r) = ((x0 + x).saturating_sub(1), (x0 + x + 1).min(img.width - 1));
            for k in 0..3 {
                let c = at(img, x0 + x, y0 + y, k);
                across[(y * rw + x) * 3 + k] = c + w * (at(img, l, y0 + y, k) + at(img, r, y0 + y, k) - 2.0 * c);
            }
        }
    }
    for y in 0..rh {
        for x in 0..rw {
            if !drawn[y * rw + x] {
                continue;
            }
            let (u, d) = (y.saturating_sub(1), (y + 1).min(rh - 1));
            for k in 0..3 {
                let c = across[(y * rw + x) * 3 + k];
                let v = c + w * (across[(u * rw + x) * 3 + k] + across[(d * rw + x) * 3 + k] - 2.0 * c);
                img.data[((y0 + y) * img.width + x0 + x) * 3 + k] = (v + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
}
