//! maskfr-torch: PyTorch checkpoints (`torch.save` of a state dict, torch ≥ 1.6's zip format:
//! `<name>/data.pkl`, `<name>/data/<key>`, `<name>/byteorder`, `<name>/version`), read
//! without executing pickle code ([`read`]) and written so `torch.load(f, weights_only=True)`
//! takes them ([`write`]). Errors name the file.

mod pickle;
mod read;
mod write;
mod zip;

pub use read::{read, Loaded};
pub use write::write;

use maskfr_core::Error;

/// Element types of torch storages this crate reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    U8,
}

impl DType {
    pub fn size(self) -> u64 {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::U8 => 1,
        }
    }

    /// The safetensors name (`F32`, `BF16`, …), which the TS side speaks.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F64 => "F64",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::I64 => "I64",
            DType::I32 => "I32",
            DType::U8 => "U8",
        }
    }

    pub fn from_name(s: &str) -> Option<DType> {
        [DType::F32, DType::F64, DType::F16, DType::BF16, DType::I64, DType::I32, DType::U8]
            .into_iter()
            .find(|d| d.name() == s)
    }

    /// `torch.<X>Storage` (typed storages, what torch.save writes for tensors); the untyped
    /// storage counts bytes.
    fn from_storage(s: &str) -> Option<DType> {
        Some(match s {
            "FloatStorage" => DType::F32,
            "DoubleStorage" => DType::F64,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ByteStorage" | "UntypedStorage" => DType::U8,
            _ => return None,
        })
    }

    fn storage(self) -> &'static str {
        match self {
            DType::F32 => "FloatStorage",
            DType::F64 => "DoubleStorage",
            DType::F16 => "HalfStorage",
            DType::BF16 => "BFloat16Storage",
            DType::I64 => "LongStorage",
            DType::I32 => "IntStorage",
            DType::U8 => "ByteStorage",
        }
    }
}

/// One tensor of a state dict: little-endian bytes, contiguous (row-major); read tensors own
/// their bytes, tensors to write may borrow them (`Tensor<&[u8]>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor<D = Vec<u8>> {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub data: D,
}

/// An error before the file's name is known; [`read`] and [`write`] prefix it.
pub(crate) fn fail(msg: impl Into<String>) -> Error {
    Error(msg.into())
}

pub(crate) fn in_file(path: &std::path::Path, e: Error) -> Error {
    Error(format!("{}: {}", path.display(), e.0))
}

#[cfg(test)]
mod tests;
