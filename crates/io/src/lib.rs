//! maskfr-io: the data formats. MXNet/InsightFace RecordIO (byte-exact reader and writer),
//! JPEG/PNG decoding and JPEG encoding. Errors name the file and the record or offset.

pub mod image_codec;
pub mod loader;
pub mod recordio;

use std::fmt;

/// An I/O or format error naming where it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error(msg.into()))
}
