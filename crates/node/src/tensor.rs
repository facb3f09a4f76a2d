use crate::js;
use maskfr_core::{backend::device_backend, memory, DType, Device, Tensor};
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// A handle on a native tensor. `dispose()` frees its storage now (once no view shares it);
/// otherwise the JS garbage collector frees it eventually.
#[napi]
pub struct NativeTensor {
    inner: Option<Tensor>,
}

impl NativeTensor {
    pub(crate) fn wrap(t: Tensor) -> NativeTensor {
        NativeTensor { inner: Some(t) }
    }
    pub(crate) fn get(&self) -> Result<&Tensor> {
        self.inner.as_ref().ok_or_else(|| Error::new(Status::InvalidArg, "tensor used after dispose()"))
    }
}

pub(crate) fn dims(shape: &[u32]) -> Vec<usize> {
    shape.iter().map(|&d| d as usize).collect()
}

#[napi]
impl NativeTensor {
    #[napi(factory, catch_unwind)]
    pub fn from_float32(data: Float32Array, shape: Vec<u32>) -> Result<NativeTensor> {
        js(Tensor::from_vec(data.to_vec(), &dims(&shape))).map(NativeTensor::wrap)
    }

    #[napi(factory, catch_unwind)]
    pub fn full(shape: Vec<u32>, value: f64, device: String) -> Result<NativeTensor> {
        let be = js(device_backend("full", js(Device::parse(&device))?))?;
        js(be.full(&dims(&shape), value as f32)).map(NativeTensor::wrap)
    }

    /// Normal(mean, std) values, a pure function of `seed` and the element index (counted
    /// from `offset`).
    #[napi(factory, catch_unwind)]
    pub fn randn(shape: Vec<u32>, mean: f64, std: f64, seed: i64, offset: i64, device: String) -> Result<NativeTensor> {
        let be = js(device_backend("randn", js(Device::parse(&device))?))?;
        js(be.randn(&dims(&shape), mean, std, seed as u64, offset as u64)).map(NativeTensor::wrap)
    }

    #[napi(factory, catch_unwind)]
    pub fn rand_uniform(shape: Vec<u32>, lo: f64, hi: f64, seed: i64, device: String) -> Result<NativeTensor> {
        let be = js(device_backend("rand_uniform", js(Device::parse(&device))?))?;
        js(be.rand_uniform(&dims(&shape), lo, hi, seed as u64)).map(NativeTensor::wrap)
    }

    #[napi(getter)]
    pub fn shape(&self) -> Result<Vec<u32>> {
        Ok(self.get()?.shape().iter().map(|&d| d as u32).collect())
    }

    #[napi(getter)]
    pub fn dtype(&self) -> Result<String> {
        Ok(self.get()?.dtype().name().to_string())
    }

    #[napi(getter)]
    pub fn device(&self) -> Result<String> {
        Ok(self.get()?.device().to_string())
    }

    #[napi(getter)]
    pub fn disposed(&self) -> bool {
        self.inner.is_none()
    }

    /// The elements as a new Float32Array (converted from f16/bf16 storage, copied back
    /// from a device).
    #[napi(catch_unwind)]
    pub fn to_float32(&self) -> Result<Float32Array> {
        Ok(Float32Array::new(js(self.get()?.values())?))
    }

    #[napi(catch_unwind)]
    pub fn cast(&self, dtype: String) -> Result<NativeTensor> {
        let t = self.get()?;
        let be = js(device_backend("cast", t.device()))?;
        js(be.cast(t, js(DType::parse(&dtype))?)).map(NativeTensor::wrap)
    }

    /// This tensor on `device` ('cpu' or 'cuda:N'): itself when it is there already.
    #[napi(catch_unwind)]
    pub fn to(&self, device: String) -> Result<NativeTensor> {
        js(self.get()?.to(js(Device::parse(&device))?)).map(NativeTensor::wrap)
    }

    /// A view sharing storage; -1 marks the one inferred dimension.
    #[napi(catch_unwind)]
    pub fn reshape(&self, shape: Vec<i32>) -> Result<NativeTensor> {
        let dims: Vec<Option<usize>> = shape.iter().map(|&d| (d >= 0).then_some(d as usize)).collect();
        js(self.get()?.reshape(&dims)).map(NativeTensor::wrap)
    }

    #[napi]
    pub fn dispose(&mut self) {
        self.inner = None;
    }
}

#[napi(object)]
pub struct MemoryStats {
    pub live_tensors: i64,
    pub live_bytes: i64,
    pub peak_bytes: i64,
    pub cached_bytes: i64,
}

/// Live tensor handles, then for `device` ('cpu' by default) live storage bytes, the peak
/// since start (or `resetPeakMemory`) and the freed buffers kept for reuse.
#[napi(catch_unwind)]
pub fn memory_stats(device: Option<String>) -> Result<MemoryStats> {
    let s = memory::stats();
    let mut out = MemoryStats {
        live_tensors: s.live_tensors,
        live_bytes: s.live_bytes as i64,
        peak_bytes: s.peak_bytes as i64,
        cached_bytes: maskfr_core::pool::cached_bytes() as i64,
    };
    let device = js(Device::parse(device.as_deref().unwrap_or("cpu")))?;
    if device != Device::Cpu {
        let d = js(device_backend("memoryStats", device))?.device_memory().unwrap_or_default();
        out.live_bytes = d.live_bytes as i64;
        out.peak_bytes = d.peak_bytes as i64;
        out.cached_bytes = d.cached_bytes as i64;
    }
    Ok(out)
}

/// Frees the buffers kept for reuse (on `device`, the CPU by default).
#[napi(catch_unwind)]
pub fn empty_cache(device: Option<String>) -> Result<()> {
    match js(Device::parse(device.as_deref().unwrap_or("cpu")))? {
        Device::Cpu => maskfr_core::pool::empty(),
        d => js(device_backend("emptyCache", d))?.empty_cache(),
    }
    Ok(())
}

/// Waits until `device` has finished the work queued on it (for timings).
#[napi(catch_unwind)]
pub fn synchronize(device: String) -> Result<()> {
    js(js(device_backend("synchronize", js(Device::parse(&device))?))?.synchronize())
}

/// Restarts peak tracking (on `device`, the CPU by default) from the live bytes.
#[napi(catch_unwind)]
pub fn reset_peak_memory(device: Option<String>) -> Result<()> {
    match js(Device::parse(device.as_deref().unwrap_or("cpu")))? {
        Device::Cpu => memory::reset_peak(),
        d => js(device_backend("resetPeakMemory", d))?.reset_peak(),
    }
    Ok(())
}
