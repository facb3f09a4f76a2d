//! What a synthesizer drew (kept per image by `maskfr mask`'s sidecar, so reports can break
//! results down by mask), and the user textures the template synthesizer may print.

use maskfr_core::{Error, Result};
use maskfr_io::image_codec::{decode, Dims, Rgb};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Synthesizer {
    Template,
    Renderer,
}

impl Synthesizer {
    pub fn name(self) -> &'static str {
        match self {
            Synthesizer::Template => "template",
            Synthesizer::Renderer => "renderer",
        }
    }
}

/// One drawn mask.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskInfo {
    pub synthesizer: Synthesizer,
    /// Template: surgical, n95, kn95, cloth, gas; renderer: full, half.
    pub kind: &'static str,
    /// The main colour as chosen, sRGB bytes: before the photo's desaturation (grey on a
    /// black-and-white photo), its light's tint and the shading.
    pub color: [u8; 3],
    /// Template: the fabric pattern's name, or `texture:<file name>`; renderer: the name of
    /// the mask texture it printed.
    pub pattern: String,
}

/// A user texture (`--textures DIR`, as MaskTheFace's pattern images): an RGB photo of a
/// fabric, tiled over the template mask.
#[derive(Clone, Debug)]
pub struct Texture {
    /// The file name, for the sidecar.
    pub name: String,
    pub image: Rgb,
}

/// Largest side of a texture image accepted (a fabric swatch, not a photograph to print).
pub const TEXTURE_MAX_SIDE: usize = 2048;

impl Texture {
    /// Every PNG/JPEG directly in `dir`, by file name order; an unreadable one is an error
    /// naming it, an empty folder too.
    pub fn load_dir(dir: &Path) -> Result<Vec<Texture>> {
        let what = dir.display();
        let entries = std::fs::read_dir(dir).map_err(|e| Error(format!("textures: cannot read folder {what}: {e}")))?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| ["png", "jpg", "jpeg"].contains(&x.to_ascii_lowercase().as_str()))
            })
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(Error(format!("textures: no .png/.jpg/.jpeg image in {what}")));
        }
        paths.iter().map(|p| Texture::load(p)).collect()
    }

    pub fn load(path: &Path) -> Result<Texture> {
        let what = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| Error(format!("texture {what}: {e}")))?;
        let image = decode(&bytes, &what, Dims::AtMost(TEXTURE_MAX_SIDE))?;
        let name = path.file_name().map_or(what.clone(), |n| n.to_string_lossy().into_owned());
        Ok(Texture { name, image })
    }
}
