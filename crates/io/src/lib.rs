//! maskfr-io: the data formats. MXNet/InsightFace RecordIO (byte-exact reader and writer),
//! JPEG/PNG decoding and JPEG encoding. Errors name the file and the record or offset.

pub mod image_codec;
pub mod loader;
pub mod recordio;

/// An I/O or format error naming where it happened.
pub use maskfr_core::Failure as Error;

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error(msg.into()))
}
