//! Tensors: a shape, a device and shared storage. Reshapes share storage; every storage
//! allocation and every handle is counted in [`crate::memory`].

use crate::memory::{self, HandleToken};
use crate::{ensure, Error, Result};
use half::{bf16, f16};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    /// Storage only for now: mixed precision computes in f32 on the CPU.
    F16,
    BF16,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
        }
    }
    pub fn parse(s: &str) -> Result<DType> {
        match s {
            "f32" | "float32" => Ok(DType::F32),
            "f16" | "float16" => Ok(DType::F16),
            "bf16" | "bfloat16" => Ok(DType::BF16),
            _ => Err(Error::new("dtype", format!("unknown dtype '{s}': expected f32, f16 or bf16"))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda(usize),
}

impl Device {
    pub fn parse(s: &str) -> Result<Device> {
        if s == "cpu" {
            return Ok(Device::Cpu);
        }
        if let Some(n) = s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            return Ok(Device::Cuda(n));
        }
        Err(Error::new("device", format!("unknown device '{s}': expected 'cpu' or 'cuda:N'")))
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

#[derive(Debug)]
enum Buffer {
    F32(Vec<f32>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
}

impl Buffer {
    fn dtype(&self) -> DType {
        match self {
            Buffer::F32(_) => DType::F32,
            Buffer::F16(_) => DType::F16,
            Buffer::BF16(_) => DType::BF16,
        }
    }
}

#[derive(Debug)]
struct Storage {
    buf: RwLock<Buffer>,
    bytes: usize,
    /// Drawn from the buffer pool, so returned to it (buffers made elsewhere, whose sizes
    /// the pool's takers may never ask for, are freed).
    pooled: bool,
}

impl Storage {
    fn new(buf: Buffer, len: usize, pooled: bool) -> Arc<Storage> {
        let bytes = len * buf.dtype().size();
        memory::alloc(bytes);
        Arc::new(Storage { buf: RwLock::new(buf), bytes, pooled })
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        memory::free(self.bytes);
        let buf = self.buf.get_mut().unwrap_or_else(|p| p.into_inner());
        if let (true, Buffer::F32(v)) = (self.pooled, std::mem::replace(buf, Buffer::F32(Vec::new()))) {
            crate::pool::give(v);
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tensor {
    shape: Vec<usize>,
    dtype: DType,
    device: Device,
    storage: Arc<Storage>,
    _handle: HandleToken,
}

/// Read access to an f32 tensor's elements.
pub struct F32Read<'a>(RwLockReadGuard<'a, Buffer>);
/// Write access to an f32 tensor's elements.
pub struct F32Write<'a>(RwLockWriteGuard<'a, Buffer>);

impl Deref for F32Read<'_> {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match &*self.0 {
            Buffer::F32(v) => v,
            _ => unreachable!("F32Read is only made for f32 buffers"),
        }
    }
}

impl Deref for F32Write<'_> {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match &*self.0 {
            Buffer::F32(v) => v,
            _ => unreachable!("F32Write is only made for f32 buffers"),
        }
    }
}

impl DerefMut for F32Write<'_> {
    fn deref_mut(&mut self) -> &mut [f32] {
        match &mut *self.0 {
            Buffer::F32(v) => v,
            _ => unreachable!("F32Write is only made for f32 buffers"),
        }
    }
}

pub(crate) fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    fn wrap(buf: Buffer, shape: Vec<usize>, len: usize, pooled: bool) -> Tensor {
        let dtype = buf.dtype();
        Tensor {
            shape,
            dtype,
            device: Device::Cpu,
            storage: Storage::new(buf, len, pooled),
            _handle: HandleToken::new(),
        }
    }

    /// `shape` zeros from the buffer pool, filled by `fill` (kernel outputs).
    pub fn filled(shape: &[usize], fill: impl FnOnce(&mut [f32])) -> Tensor {
        let n = numel(shape);
        let mut v = crate::pool::zeros(n);
        fill(&mut v);
        Tensor::wrap(Buffer::F32(v), shape.to_vec(), n, true)
    }

    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        ensure!(
            data.len() == numel(shape),
            "tensor",
            "{} values do not fill shape {:?} ({} elements)",
            data.len(),
            shape,
            numel(shape)
        );
        let len = data.len();
        Ok(Tensor::wrap(Buffer::F32(data), shape.to_vec(), len, false))
    }

    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 0.0)
    }

    pub fn full(shape: &[usize], value: f32) -> Tensor {
        Tensor::filled(shape, |v| {
            if value != 0.0 {
                v.fill(value)
            }
        })
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn device(&self) -> Device {
        self.device
    }

    /// Whether two handles share one storage (in-place ops refuse aliased arguments).
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    pub fn f32s(&self, op: &str) -> Result<F32Read<'_>> {
        ensure!(
            self.dtype == DType::F32,
            op,
            "expected an f32 tensor, got {} of shape {:?}",
            self.dtype.name(),
            self.shape
        );
        Ok(F32Read(self.storage.buf.read().unwrap_or_else(|e| e.into_inner())))
    }

    pub fn f32s_mut(&self, op: &str) -> Result<F32Write<'_>> {
        ensure!(
            self.dtype == DType::F32,
            op,
            "expected an f32 tensor, got {} of shape {:?}",
            self.dtype.name(),
            self.shape
        );
        Ok(F32Write(self.storage.buf.write().unwrap_or_else(|e| e.into_inner())))
    }

    /// All elements as f32, whatever the storage dtype.
    pub fn to_vec(&self) -> Vec<f32> {
        match &*self.storage.buf.read().unwrap_or_else(|e| e.into_inner()) {
            Buffer::F32(v) => v.clone(),
            Buffer::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            Buffer::BF16(v) => v.iter().map(|x| x.to_f32()).collect(),
        }
    }

    /// A copy in another storage dtype (rounding to nearest even).
    pub fn cast(&self, dtype: DType) -> Tensor {
        let v = self.to_vec();
        let n = v.len();
        let buf = match dtype {
            DType::F32 => Buffer::F32(v),
            DType::F16 => Buffer::F16(v.iter().map(|&x| f16::from_f32(x)).collect()),
            DType::BF16 => Buffer::BF16(v.iter().map(|&x| bf16::from_f32(x)).collect()),
        };
        Tensor::wrap(buf, self.shape.clone(), n, false)
    }

    /// A view with another shape over the same storage; one dimension may be `None` (inferred).
    pub fn reshape(&self, shape: &[Option<usize>]) -> Result<Tensor> {
        let known: usize = shape.iter().flatten().product();
        let inferred = shape.iter().filter(|d| d.is_none()).count();
        ensure!(inferred <= 1, "reshape", "at most one dimension can be inferred, got {inferred} in {shape:?}");
        let n = self.numel();
        let dims: Vec<usize> = if inferred == 1 {
            ensure!(
                known > 0 && n.is_multiple_of(known),
                "reshape",
                "cannot reshape {:?} ({n} elements) to {:?}",
                self.shape,
                shape
            );
            shape.iter().map(|d| d.unwrap_or(n / known)).collect()
        } else {
            shape.iter().map(|d| d.unwrap_or(0)).collect()
        };
        ensure!(
            numel(&dims) == n,
            "reshape",
            "cannot reshape {:?} ({n} elements) to {:?} ({} elements)",
            self.shape,
            dims,
            numel(&dims)
        );
        Ok(Tensor { shape: dims, ..self.clone() })
    }
}
