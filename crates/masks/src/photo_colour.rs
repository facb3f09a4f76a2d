//! How colourful a photograph is and the colour of its light, so a drawn mask matches it:
//! grey on a black-and-white photo, warm in warm light. The template synthesizer takes both
//! (`tint`); the renderer only the desaturation (its shading already follows the photo's light).

use maskfr_io::image_codec::Rgb;

#[derive(Clone, Copy, Debug)]
pub struct PhotoColour {
    /// The light's colour, per channel around 1: part of the grey-world cast (the mean
    /// colour over its luminance), so a white mask is warm in warm light.
    pub cast: [f64; 3],
    /// How colourful the photo is (0: black and white, where the mask must be grey too; 1:
    /// as colourful as usual).
    pub colour: f64,
}

impl PhotoColour {
    /// Read from every other pixel of every other row.
    pub fn of(img: &Rgb) -> PhotoColour {
        let (mut rgb, mut chroma, mut m) = ([0.0; 3], 0.0, 0usize);
        for y in (0..img.height).step_by(2) {
            for x in (0..img.width).step_by(2) {
                let p = &img.data[(y * img.width + x) * 3..][..3];
                (0..3).for_each(|k| rgb[k] += p[k] as f64);
                chroma += (p[0].max(p[1]).max(p[2]) - p[0].min(p[1]).min(p[2])) as f64 / 255.0;
                m += 1;
            }
        }
        let grey = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]).max(1e-9);
        let cast = rgb.map(|c| if m > 0 { (1.0 + 0.35 * (c / grey - 1.0)).clamp(0.75, 1.25) } else { 1.0 });
        let colour = if m > 0 { (chroma / m as f64 / 0.06).min(1.0) } else { 1.0 };
        PhotoColour { cast, colour }
    }

    /// A mask colour (0–1) as colourful as the photo (grey on a black-and-white one).
    pub fn desaturate(&self, c: [f64; 3]) -> [f64; 3] {
        let y = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
        c.map(|c| y + (c - y) * self.colour)
    }

    /// A mask colour (0–1) as this photo would show it: as colourful as the photo, in its
    /// light's colour.
    pub fn tint(&self, c: [f64; 3]) -> [f64; 3] {
        let d = self.desaturate(c);
        [0, 1, 2].map(|k| d[k] * self.cast[k])
    }
}
