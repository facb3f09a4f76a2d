//! PyTorch checkpoint bindings (maskfr-torch): a `torch.save`d state dict read and written.

use crate::js;
use maskfr_torch::{DType, Tensor};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::path::Path;

/// One tensor: its safetensors dtype name (`F32`, `I64`, …), shape and little-endian bytes.
#[napi(object)]
pub struct TorchTensor {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<i64>,
    pub data: Buffer,
}

#[napi(object)]
pub struct TorchCheckpoint {
    pub tensors: Vec<TorchTensor>,
    /// The key the state dict sat under (`state_dict`, …); empty at the top level.
    pub nested_in: String,
    /// Whether DDP's `module.` prefix was stripped from every name.
    pub stripped_ddp: bool,
}

/// Reads a `torch.save` file's state dict (floats as F32) without executing its pickle.
#[napi(catch_unwind)]
pub fn read_torch_checkpoint(path: String) -> Result<TorchCheckpoint> {
    let l = js(maskfr_torch::read(Path::new(&path)))?;
    let tensors = l
        .tensors
        .into_iter()
        .map(|t| TorchTensor {
            name: t.name,
            dtype: t.dtype.name().into(),
            shape: t.shape.iter().map(|&d| d as i64).collect(),
            data: t.data.into(),
        })
        .collect();
    Ok(TorchCheckpoint { tensors, nested_in: l.nested_in, stripped_ddp: l.stripped_ddp })
}

/// Writes tensors as a `torch.save`d state dict that `torch.load(f, weights_only=True)` takes.
#[napi(catch_unwind)]
pub fn write_torch_checkpoint(path: String, tensors: Vec<TorchTensor>) -> Result<()> {
    let mut out = Vec::with_capacity(tensors.len());
    for t in &tensors {
        let dtype = DType::from_name(&t.dtype).ok_or_else(|| {
            Error::new(
                Status::InvalidArg,
                format!("writeTorchCheckpoint: '{}' has dtype {}, not one torch storages hold here", t.name, t.dtype),
            )
        })?;
        if t.shape.iter().any(|&d| d < 0) {
            return Err(Error::new(
                Status::InvalidArg,
                format!("writeTorchCheckpoint: '{}' has shape {:?}", t.name, t.shape),
            ));
        }
        out.push(Tensor {
            name: t.name.clone(),
            dtype,
            shape: t.shape.iter().map(|&d| d as u64).collect(),
            data: &t.data[..],
        });
    }
    js(maskfr_torch::write(Path::new(&path), &out))
}
