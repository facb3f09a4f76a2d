//! maskfr-masks: masked-face synthesis on faces with five landmarks (ArcFace order: eyes,
//! nose tip, mouth corners). The template synthesizer warps procedurally drawn mask
//! templates (several shapes, many textures and colours) onto six face key points.

pub mod choices;
pub mod geometry;
pub mod offline;
mod photo_colour;
pub mod pipeline;
pub mod renderer;
pub mod template;
pub mod texture;

pub use choices::{MaskInfo, Synthesizer, Texture};
pub use geometry::{face_keypoints, Homography, Point, ARCFACE_112};
pub use pipeline::{MaskChoices, MaskPipeline, Synthesizers};
pub use renderer::RenderSynth;
pub use template::{MaskShape, TemplateSynth};
