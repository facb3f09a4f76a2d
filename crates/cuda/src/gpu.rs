//! One GPU: its context and compute stream (every op is queued there, so ordering alone
//! keeps reuse of cached blocks safe), a copy stream for large uploads, the caching
//! allocator, pinned staging for host copies, the NVRTC modules loaded on first use, and the
//! cuBLAS and cuDNN handles. Or the emulated device (MASKFR_CUDA_EMULATE=1, see
//! [`crate::emulated`]): the same allocator, launches and dispatch over host memory.

use crate::alloc::{Block, Caching, RawMemory};
use crate::emulated;
use crate::nvrtc::{choose_target, nvrtc_version, supported_archs, Target};
use crate::transfers::Transfers;
use crate::{probe::require, Error, Result};
use cudarc::driver::{result as drv, CudaContext, CudaFunction, CudaModule, CudaStream, LaunchConfig, PushKernelArg};
use maskfr_core::{DType, Device, DeviceBuffer, Tensor};
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) fn driver<T>(what: &str, r: std::result::Result<T, drv::DriverError>) -> Result<T> {
    r.map_err(|e| Error(format!("cuda: {what}: {e:?}")))
}

/// Where device memory comes from: cudaMalloc/cudaFree on one context, or the emulated
/// device's guarded host mappings.
pub enum Memory {
    Driver(Arc<CudaStream>),
    Emulated,
}

impl RawMemory for Memory {
    fn alloc(&self, bytes: usize) -> Result<u64> {
        match self {
            Memory::Driver(stream) => {
                driver("bind context", stream.context().bind_to_thread())?;
                // SAFETY: the context is current; the pointer is owned by the allocator until freed.
                driver("cuMemAlloc", unsafe { drv::malloc_sync(bytes) })
            }
            Memory::Emulated => emulated::alloc(bytes),
        }
    }
    fn free(&self, ptr: u64) {
        match self {
            Memory::Driver(stream) => {
                let _ = stream.context().bind_to_thread();
                // SAFETY: `ptr` came from `alloc` and no queued work uses it (`quiesce` ran
                // first). A failure here cannot be handed to anyone; the block is lost, nothing else.
                let _ = unsafe { drv::free_sync(ptr) };
            }
            Memory::Emulated => emulated::free(ptr),
        }
    }
    fn quiesce(&self) {
        if let Memory::Driver(stream) = self {
            let _ = stream.synchronize();
        }
    }
}

/// A device tensor's memory: a block of the caching allocator.
#[derive(Debug)]
pub struct DeviceBlock(pub Block<Memory>);

impl DeviceBuffer for DeviceBlock {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub struct Scratch<'a> {
    gpu: &'a Gpu,
    pub ptr: u64,
}

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        let raw = self.gpu.memory.raw();
        raw.quiesce();
        raw.free(self.ptr);
    }
}

/// cuBLAS and cuDNN handles (raw: they are only used under the `Gpu::libs` mutex) and the
/// convolution plans made so far.
pub(crate) struct Libs {
    pub blas: cudarc::cublas::sys::cublasHandle_t,
    pub dnn: cudarc::cudnn::sys::cudnnHandle_t,
    pub plans: HashMap<crate::conv::PlanKey, crate::conv::Plan>,
}

// SAFETY: the handles are used by one thread at a time (the mutex), as both libraries allow.
unsafe impl Send for Libs {}

/// A kernel argument: device pointers travel as their 64-bit address.
#[derive(Clone, Copy)]
pub enum Arg {
    Ptr(u64),
    I32(i32),
    I64(i64),
    U64(u64),
    F32(f32),
    F64(f64),
}

/// What runs the work: a CUDA context with its stream, modules and libraries, or the
/// emulated device (launches run on the calling thread, one at a time, in call order).
pub(crate) enum Runtime {
    Driver(Box<DriverRuntime>),
    Emulated(Mutex<()>),
}

pub(crate) struct DriverRuntime {
    stream: Arc<CudaStream>,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    functions: Mutex<HashMap<&'static str, CudaFunction>>,
    pub(crate) transfers: Transfers,
    libs: Mutex<Libs>,
    /// What the kernels are compiled to for this GPU and driver.
    target: Target,
}

pub struct Gpu {
    pub ordinal: usize,
    pub(crate) memory: Arc<Caching<Memory>>,
    pub(crate) runtime: Runtime,
}

impl Gpu {
    /// Opens GPU `ordinal` (the emulated one under MASKFR_CUDA_EMULATE=1), naming any
    /// missing library or driver failure.
    pub fn open(ordinal: usize) -> Result<Gpu> {
        if emulated::enabled() {
            return Ok(Gpu {
                ordinal,
                memory: Caching::new(Memory::Emulated),
                runtime: Runtime::Emulated(Mutex::new(())),
            });
        }
        for lib in ["cuda", "nvrtc", "cublas", "cudnn"] {
            require(lib)?;
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| Error(format!("cuda: cannot open GPU {ordinal}: {e:?}")))?;
        let (major, minor) = driver("compute capability", ctx.compute_capability())?;
        let driver_version =
            crate::probe::driver_version().ok_or_else(|| Error("cuda: the driver's version query failed".into()))?;
        let target = choose_target(driver_version, nvrtc_version()?, major * 10 + minor, &supported_archs()?)?;
        // One compute stream: queue order is the only synchronisation the backend needs.
        // SAFETY: nothing else uses this context's event tracking.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.default_stream();
        let blas = cudarc::cublas::result::create_handle().map_err(|e| Error(format!("cublas: {e:?}")))?;
        let dnn = cudarc::cudnn::result::create_handle().map_err(|e| Error(format!("cudnn: {e:?}")))?;
        // SAFETY: both handles are fresh and the stream lives as long as the Gpu.
        unsafe {
            cudarc::cublas::result::set_stream(blas, stream.cu_stream() as _)
                .map_err(|e| Error(format!("cublas: {e:?}")))?;
            cudarc::cudnn::result::set_stream(dnn, stream.cu_stream() as _)
                .map_err(|e| Error(format!("cudnn: {e:?}")))?;
        }
        Ok(Gpu {
            ordinal,
            memory: Caching::new(Memory::Driver(stream.clone())),
            runtime: Runtime::Driver(Box::new(DriverRuntime {
                stream,
                modules: Mutex::new(HashMap::new()),
                functions: Mutex::new(HashMap::new()),
                transfers: Transfers::open(&ctx)?,
                libs: Mutex::new(Libs { blas, dnn, plans: HashMap::new() }),
                target,
            })),
        })
    }

    /// Whether this is the emulated device.
    pub fn is_emulated(&self) -> bool {
        matches!(self.runtime, Runtime::Emulated(_))
    }

    /// What the kernels are compiled to (None on the emulated device: C++ at build time).
    pub fn target(&self) -> Option<Target> {
        match &self.runtime {
            Runtime::Driver(d) => Some(d.target),
            Runtime::Emulated(_) => None,
        }
    }

    /// The CUDA side; an error on the emulated device, which has no stream or library handles.
    pub(crate) fn cuda(&self) -> Result<&DriverRuntime> {
        match &self.runtime {
            Runtime::Driver(d) => Ok(d),
            Runtime::Emulated(_) => Err(Error("cuda: the emulated device has no CUDA stream or library".into())),
        }
    }

    pub fn device(&self) -> Device {
        Device::Cuda(self.ordinal)
    }

    pub(crate) fn stream(&self) -> Result<&Arc<CudaStream>> {
        Ok(&self.cuda()?.stream)
    }

    /// Makes this GPU's context current on the calling thread (N-API calls and tests come
    /// from several threads; cuBLAS, cuDNN and copies act on the current context).
    pub(crate) fn bind(&self) -> Result<()> {
        match &self.runtime {
            Runtime::Driver(d) => driver("bind context", d.stream.context().bind_to_thread()),
            Runtime::Emulated(_) => Ok(()),
        }
    }

    /// The library handles, with the context current.
    pub(crate) fn libs(&self) -> Result<MutexGuard<'_, Libs>> {
        self.bind()?;
        Ok(self.cuda()?.libs.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn synchronize(&self) -> Result<()> {
        match &self.runtime {
            Runtime::Driver(d) => driver("synchronize", d.stream.synchronize()),
            Runtime::Emulated(_) => Ok(()),
        }
    }

    /// A block of at least `bytes` (contents undefined).
    pub fn block(&self, bytes: usize) -> Result<Block<Memory>> {
        let b = self.memory.take(bytes)?;
        if self.is_emulated() {
            emulated::holds(b.ptr, bytes)?;
        }
        Ok(b)
    }

    /// Device memory outside the cache, freed (after the queue drains) when dropped: for
    /// one-off needs such as measuring convolution algorithms.
    pub fn scratch(&self, bytes: usize) -> Result<Scratch<'_>> {
        let ptr = self.memory.raw().alloc(bytes)?;
        Ok(Scratch { gpu: self, ptr })
    }

    /// An uninitialised device tensor and the address of its first element.
    pub fn empty(&self, shape: &[usize], dtype: DType) -> Result<(Tensor, u64)> {
        let n: usize = shape.iter().product();
        let b = self.block(n * dtype.size())?;
        let ptr = b.ptr;
        Ok((Tensor::from_device(Box::new(DeviceBlock(b)), shape, dtype, self.device()), ptr))
    }

    /// A zero-filled device tensor.
    pub fn zeros(&self, shape: &[usize]) -> Result<(Tensor, u64)> {
        let (t, ptr) = self.empty(shape, DType::F32)?;
        self.memset_zero(ptr, t.numel() * 4)?;
        Ok((t, ptr))
    }

    pub fn memset_zero(&self, ptr: u64, bytes: usize) -> Result<()> {
        let d = match &self.runtime {
            Runtime::Driver(d) => d,
            Runtime::Emulated(_) => return emulated::memset_zero(ptr, bytes),
        };
        self.bind()?;
        // SAFETY: `ptr` addresses at least `bytes` of a live block; queued on our stream.
        driver("memset", unsafe { drv::memset_d8_async(ptr, 0, bytes, d.stream.cu_stream()) })
    }

    pub fn copy_device(&self, dst: u64, src: u64, bytes: usize) -> Result<()> {
        let d = match &self.runtime {
            Runtime::Driver(d) => d,
            Runtime::Emulated(_) => return emulated::copy(dst, src, bytes),
        };
        self.bind()?;
        // SAFETY: both ranges lie in live blocks; queued on our stream.
        driver("copy", unsafe { drv::memcpy_dtod_async(dst, src, bytes, d.stream.cu_stream()) })
    }

    fn function(d: &DriverRuntime, module: &'static str, name: &'static str) -> Result<CudaFunction> {
        let mut fns = d.functions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = fns.get(name) {
            return Ok(f.clone());
        }
        let m = {
            let mut mods = d.modules.lock().unwrap_or_else(|p| p.into_inner());
            match mods.get(module) {
                Some(m) => m.clone(),
                None => {
                    let m = driver(
                        "load module",
                        d.stream.context().load_module(crate::compile(module, d.target)?.module()),
                    )?;
                    mods.insert(module, m.clone());
                    m
                }
            }
        };
        let f = driver(name, m.load_function(name))?;
        fns.insert(name, f.clone());
        Ok(f)
    }

    /// Queues kernel `name` of `module` on the stream (on the emulated device: runs it).
    /// A grid with no block (zero rows or elements) is nothing to do: it returns before the
    /// launch, which CUDA would refuse, so ops on empty tensors give empty results.
    pub fn launch(&self, module: &'static str, name: &'static str, cfg: LaunchConfig, args: &[Arg]) -> Result<()> {
        let (x, y, z) = cfg.grid_dim;
        if x == 0 || y == 0 || z == 0 {
            return Ok(());
        }
        let d = match &self.runtime {
            Runtime::Driver(d) => d,
            Runtime::Emulated(turn) => {
                let _one_at_a_time = turn.lock().unwrap_or_else(|p| p.into_inner());
                return emulated::launch(module, name, cfg, args);
            }
        };
        self.bind()?; // cuModuleGetFunction below needs the context current on this thread
        let f = Self::function(d, module, name)?;
        let mut b = d.stream.launch_builder(&f);
        for a in args {
            match a {
                Arg::Ptr(v) | Arg::U64(v) => b.arg(v),
                Arg::I32(v) => b.arg(v),
                Arg::I64(v) => b.arg(v),
                Arg::F32(v) => b.arg(v),
                Arg::F64(v) => b.arg(v),
            };
        }
        // SAFETY: the argument lists match the kernels' signatures (each call site mirrors
        // its .cu declaration; the emulated device checks them) and every pointer addresses
        // a live block of the right size.
        unsafe { b.launch(cfg) }.map_err(|e| Error(format!("cuda: launching {name}: {e:?}")))?;
        Ok(())
    }
}

/// Grid-stride launch over `n` elements (no block for none).
pub fn elementwise(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(256).min(65_535) as u32;
    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 }
}

/// One block of 256 threads per row (or channel), with 256 doubles of scratch; none for
/// no rows (a block would read row 0 of an empty tensor).
pub fn per_row(rows: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: (rows as u32, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 256 * 8 }
}

/// The device address of `t`'s first element, checked to be `dtype` on `gpu`.
pub fn addr(op: &str, t: &Tensor, dtype: DType) -> Result<u64> {
    if t.dtype() != dtype {
        return Err(Error(format!(
            "{op}: expected a {} tensor, got {} of shape {:?}",
            dtype.name(),
            t.dtype().name(),
            t.shape()
        )));
    }
    let b = t.device_buffer(op)?;
    let b = b.as_any().downcast_ref::<DeviceBlock>().ok_or_else(|| Error(format!("{op}: not a CUDA tensor")))?;
    Ok(b.0.ptr)
}
