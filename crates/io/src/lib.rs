//! maskfr-io: the data formats. MXNet/InsightFace RecordIO (byte-exact reader and writer),
//! image folders, packing into RecordIO, JPEG/PNG decoding and JPEG encoding. Errors name the
//! file and the record or offset.

pub mod align;
pub mod folder;
pub mod image_codec;
pub mod loader;
pub mod pack;
pub mod photometric;
pub mod recordio;
pub mod verification_bin;

/// maskfr's one error type; here its message names the file and the record or offset.
pub use maskfr_core::{Error, Result};

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error(msg.into()))
}
