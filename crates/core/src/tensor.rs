//! Tensors: a shape, a device and shared storage. Reshapes share storage; every host
//! storage allocation and every handle is counted in [`crate::memory`]; device memory
//! belongs to its backend (which counts it) and is only held here.

use crate::memory::{self, HandleToken};
use crate::{ensure, Error, Result};
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use rayon::prelude::*;
use std::any::Any;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    /// Storage on the CPU (which computes in f32); conv and GEMM compute in it on a GPU.
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

/// A device backend's memory behind a tensor; the backend that made it downcasts it back.
pub trait DeviceBuffer: Send + Sync + fmt::Debug {
    fn as_any(&self) -> &dyn Any;
}

#[derive(Debug)]
enum Data {
    Host(RwLock<Buffer>),
    Device(Box<dyn DeviceBuffer>),
}

#[derive(Debug)]
struct Storage {
    data: Data,
    bytes: usize,
    /// Drawn from the buffer pool, so returned to it (buffers made elsewhere, whose sizes
    /// the pool's takers may never ask for, are freed).
    pooled: bool,
}

impl Storage {
    fn new(buf: Buffer, len: usize, pooled: bool) -> Arc<Storage> {
        let bytes = len * buf.dtype().size();
        memory::alloc(bytes);
        Arc::new(Storage { data: Data::Host(RwLock::new(buf)), bytes, pooled })
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        let Data::Host(buf) = &mut self.data else { return };
        memory::free(self.bytes);
        let buf = buf.get_mut().unwrap_or_else(|p| p.into_inner());
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

/// Conversions run in parallel slices through `half`'s vectorised slice routines (mixed
/// precision on the CPU casts every product's operands).
const CAST_CHUNK: usize = 1 << 15;

fn widen<H: Copy + Default + Send + Sync>(v: &[H]) -> Vec<f32>
where
    [H]: HalfFloatSliceExt,
{
    let mut out = vec![0f32; v.len()];
    out.par_chunks_mut(CAST_CHUNK).zip(v.par_chunks(CAST_CHUNK)).for_each(|(o, s)| s.convert_to_f32_slice(o));
    out
}

fn narrow<H: Copy + Default + Send + Sync>(v: &[f32]) -> Vec<H>
where
    [H]: HalfFloatSliceExt,
{
    let mut out = vec![H::default(); v.len()];
    out.par_chunks_mut(CAST_CHUNK).zip(v.par_chunks(CAST_CHUNK)).for_each(|(o, s)| o.convert_from_f32_slice(s));
    out
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
        Tensor::pooled(crate::pool::zeros(numel(shape)), shape, fill)
    }

    /// As [`Tensor::filled`] for a `fill` that writes every element: the buffer starts with
    /// whatever a reused one held, not zeros.
    pub fn overwritten(shape: &[usize], fill: impl FnOnce(&mut [f32])) -> Tensor {
        Tensor::pooled(crate::pool::scratch(numel(shape)), shape, fill)
    }

    fn pooled(mut v: Vec<f32>, shape: &[usize], fill: impl FnOnce(&mut [f32])) -> Tensor {
        fill(&mut v);
        let n = v.len();
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

    fn host(&self, op: &str) -> Result<&RwLock<Buffer>> {
        match &self.storage.data {
            Data::Host(b) => Ok(b),
            Data::Device(_) => Err(Error::new(
                op,
                format!(
                    "this op reads host memory but the tensor of shape {:?} is on {}: move it with .to('cpu')",
                    self.shape, self.device
                ),
            )),
        }
    }

    /// A device tensor over `buf`, which holds `numel(shape)` elements of `dtype`.
    pub fn from_device(buf: Box<dyn DeviceBuffer>, shape: &[usize], dtype: DType, device: Device) -> Tensor {
        let bytes = numel(shape) * dtype.size();
        Tensor {
            shape: shape.to_vec(),
            dtype,
            device,
            storage: Arc::new(Storage { data: Data::Device(buf), bytes, pooled: false }),
            _handle: HandleToken::new(),
        }
    }

    /// The backend's buffer behind a device tensor.
    pub fn device_buffer(&self, op: &str) -> Result<&dyn DeviceBuffer> {
        match &self.storage.data {
            Data::Device(b) => Ok(b.as_ref()),
            Data::Host(_) => Err(Error::new(
                op,
                format!("expected a tensor on a device, got a host tensor of shape {:?}", self.shape),
            )),
        }
    }

    pub fn f32s(&self, op: &str) -> Result<F32Read<'_>> {
        ensure!(
            self.dtype == DType::F32,
            op,
            "expected an f32 tensor, got {} of shape {:?}",
            self.dtype.name(),
            self.shape
        );
        Ok(F32Read(self.host(op)?.read().unwrap_or_else(|e| e.into_inner())))
    }

    pub fn f32s_mut(&self, op: &str) -> Result<F32Write<'_>> {
        ensure!(
            self.dtype == DType::F32,
            op,
            "expected an f32 tensor, got {} of shape {:?}",
            self.dtype.name(),
            self.shape
        );
        Ok(F32Write(self.host(op)?.write().unwrap_or_else(|e| e.into_inner())))
    }

    /// All elements as f32, whatever the storage dtype or device (device tensors are
    /// copied back through their backend).
    pub fn values(&self) -> Result<Vec<f32>> {
        match self.device {
            Device::Cpu => Ok(self.to_vec()),
            Device::Cuda(_) => Ok(crate::backend::device_backend("values", self.device)?.download(self)?.to_vec()),
        }
    }

    /// All elements of a host tensor as f32, whatever the storage dtype (a device tensor
    /// reads as an error: see [`Tensor::values`]).
    pub fn to_vec(&self) -> Vec<f32> {
        let Data::Host(buf) = &self.storage.data else {
            panic!("to_vec: the tensor of shape {:?} is on {}; use values()", self.shape, self.device)
        };
        match &*buf.read().unwrap_or_else(|e| e.into_inner()) {
            Buffer::F32(v) => v.clone(),
            Buffer::F16(v) => widen(v),
            Buffer::BF16(v) => widen(v),
        }
    }

    /// A host copy in another storage dtype (rounding to nearest even).
    pub fn cast(&self, dtype: DType) -> Tensor {
        let v = self.to_vec();
        let n = v.len();
        let buf = match dtype {
            DType::F32 => Buffer::F32(v),
            DType::F16 => Buffer::F16(narrow(&v)),
            DType::BF16 => Buffer::BF16(narrow(&v)),
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
