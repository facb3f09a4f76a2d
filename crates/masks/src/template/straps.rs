//! Ear loops and head straps: curves from the mask's side edges toward the ears (outside the
//! mask, which is drawn over their ends), thin, shaded across like a cord or a flat band,
//! with a faint shadow on the skin. On a turned head the far side's straps run behind the
//! cheek, so they are cut short.

use super::light::{bounds, Pose};
use super::shapes::MaskShape;
use crate::geometry::{Homography, Point};
use maskfr_io::image_codec::Rgb;

/// One strand on the left side of the face (the right one is its mirror image): from the
/// attachment `a` through control point `c` to `e` (behind the ear), template units.
struct Strand {
    a: Point,
    c: Point,
    e: Point,
}

/// Each kind's strands and their width (template units); flat bands or round cords.
fn strands(shape: MaskShape) -> (&'static [Strand], f64, bool) {
    const LOOPS: [Strand; 2] = [
        Strand { a: [3.0, 17.0], c: [-7.0, 15.0], e: [-17.0, 21.0] },
        Strand { a: [3.0, 62.0], c: [-9.0, 50.0], e: [-17.0, 26.0] },
    ];
    const KN95: [Strand; 2] = [
        Strand { a: [5.5, 26.0], c: [-6.0, 22.0], e: [-17.0, 21.0] },
        Strand { a: [11.0, 61.0], c: [-6.0, 50.0], e: [-17.0, 27.0] },
    ];
    const CLOTH: [Strand; 2] = [
        Strand { a: [2.5, 23.0], c: [-7.0, 20.0], e: [-17.0, 21.0] },
        Strand { a: [2.5, 56.0], c: [-8.0, 46.0], e: [-17.0, 27.0] },
    ];
    // Head straps run back along the side of the face, above and below the ear.
    const HEAD: [Strand; 2] = [
        Strand { a: [12.0, 22.0], c: [-3.0, 15.0], e: [-15.0, 4.0] },
        Strand { a: [12.0, 64.0], c: [-3.0, 70.0], e: [-15.0, 73.0] },
    ];
    const HARNESS: [Strand; 2] = [
        Strand { a: [30.0, 17.0], c: [4.0, 11.0], e: [-14.0, 6.0] },
        Strand { a: [29.0, 74.0], c: [4.0, 80.0], e: [-15.0, 80.0] },
    ];
    match shape {
        MaskShape::Surgical => (&LOOPS, 1.3, false),
        MaskShape::Kn95 => (&KN95, 1.3, false),
        MaskShape::Cloth => (&CLOTH, 2.3, true),
        MaskShape::N95 => (&HEAD, 1.9, true),
        MaskShape::Gas => (&HARNESS, 3.2, true),
    }
}

/// Points along the quadratic Bézier `s`, mirrored when `right`, shortened by `reach`, in
/// image pixels.
fn polyline(s: &Strand, right: bool, reach: f64, h: &Homography) -> [Point; 13] {
    let m = |p: Point| if right { [100.0 - p[0], p[1]] } else { p };
    let (a, c, e) = (m(s.a), m(s.c), m(s.e));
    let (c, e) = (
        [a[0] + (c[0] - a[0]) * reach, a[1] + (c[1] - a[1]) * reach],
        [a[0] + (e[0] - a[0]) * reach, a[1] + (e[1] - a[1]) * reach],
    );
    std::array::from_fn(|i| {
        let t = i as f64 / 12.0;
        let (p, q, r) = ((1.0 - t) * (1.0 - t), 2.0 * t * (1.0 - t), t * t);
        h.apply([p * a[0] + q * c[0] + r * e[0], p * a[1] + q * c[1] + r * e[1]])
    })
}

/// Draws the straps of `shape` in `color` (0–1, before the scene's brightness `bright`), their
/// edges as soft as the photo's (`blur`: the mask's softening weight).
pub fn draw(img: &mut Rgb, shape: MaskShape, color: [f64; 3], bright: f64, blur: f64, h: &Homography, pose: &Pose) {
    let (list, width, flat) = strands(shape);
    let half = (0.5 * width / pose.upp).max(0.45);
    // A turned head hides the far ear: that side's strands end sooner.
    let turn = (pose.shift / 12.0).clamp(-1.0, 1.0);
    for right in [false, true] {
        let far = if right { turn } else { -turn };
        let reach = if far > 0.0 { 1.0 - 0.7 * far } else { 1.0 - 0.25 * far };
        for s in list {
            let look = Look { half, flat, color, bright, soft: 1.0 + 3.0 * blur };
            strand(img, &polyline(s, right, reach, h), &look, pose);
        }
    }
}

/// How a strand is drawn: half width (pixels), flat band or round cord, colour (0–1),
/// brightness, width of its edge's ramp (pixels).
#[derive(Clone, Copy)]
struct Look {
    half: f64,
    flat: bool,
    color: [f64; 3],
    bright: f64,
    soft: f64,
}

/// Rasterises one strand: the distance to the polyline and the position along it, found
/// segment by segment over each segment's own box (a strand's box is mostly empty), then
/// the strand and its shadow composited.
fn strand(img: &mut Rgb, pts: &[Point; 13], look: &Look, pose: &Pose) {
    let Look { half, flat, color, bright, soft } = *look;
    let shadow = 1.2; // pixels beyond the strand's edge
    let reach = half + shadow + 0.5 * soft;
    let (x0, x1) = bounds(pts.iter().flat_map(|p| [p[0] - reach, p[0] + reach]), img.width);
    let (y0, y1) = bounds(pts.iter().flat_map(|p| [p[1] - reach, p[1] + reach]), img.height);
    let w = x1.saturating_sub(x0);
    let mut near = vec![(f64::INFINITY, 0.0); w * y1.saturating_sub(y0)];
    for (i, seg) in pts.windows(2).enumerate() {
        let (ax, ay, bx, by) = (seg[0][0], seg[0][1], seg[1][0], seg[1][1]);
        let (sx0, sx1) = bounds([ax - reach, ax + reach, bx - reach, bx + reach].into_iter(), img.width);
        let (sy0, sy1) = bounds([ay - reach, ay + reach, by - reach, by + reach].into_iter(), img.height);
        let (dx, dy) = (bx - ax, by - ay);
        let len2 = (dx * dx + dy * dy).max(1e-12);
        for y in sy0.max(y0)..sy1.min(y1) {
            for x in sx0.max(x0)..sx1.min(x1) {
                let (px, py) = (x as f64 + 0.5 - ax, y as f64 + 0.5 - ay);
                let t = ((px * dx + py * dy) / len2).clamp(0.0, 1.0);
                let d2 = (px - t * dx).powi(2) + (py - t * dy).powi(2);
                let cell = &mut near[(y - y0) * w + x - x0];
                if d2 < cell.0 {
                    *cell = (d2, (i as f64 + t) / 12.0);
                }
            }
        }
    }
    for y in y0..y1 {
        for x in x0..x1 {
            let (d2, along) = near[(y - y0) * w + x - x0];
            if d2 >= reach * reach || !pose.clear_of_eyes(x as f64 + 0.5, y as f64 + 0.5) {
                continue;
            }
            let d = d2.sqrt();
            // The strand goes round behind the ear or the head: it fades over its last third.
            let fade = ((1.0 - along) / 0.35).clamp(0.0, 1.0);
            let alpha = ((half - d) / soft + 0.5).clamp(0.0, 1.0) * fade;
            let dark = 0.22 * (1.0 - ((d - half) / shadow).clamp(0.0, 1.0)) * fade;
            let across = (d / half).min(1.0);
            let shade = if flat { 0.92 - 0.25 * across.powi(4) } else { 0.6 + 0.4 * (1.0 - across * across).sqrt() };
            // Darker toward the ear, where the strand turns away from the camera.
            let shade = shade * (1.0 - 0.25 * along) * bright;
            let px = &mut img.data[(y * img.width + x) * 3..][..3];
            for (k, v) in px.iter_mut().enumerate() {
                let under = *v as f64 * (1.0 - dark);
                let top = 255.0 * (color[k] * shade).clamp(0.0, 1.0);
                *v = (under + (top - under) * alpha + 0.5) as u8;
            }
        }
    }
}
