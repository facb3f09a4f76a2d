import { native } from '../native';

export interface MemoryStats {
  /** Native tensor handles alive (views count separately). */
  liveTensors: number;
  /** Bytes of native storage alive. */
  liveBytes: number;
  /** Highest `liveBytes` since start or the last `resetPeakMemory()`. */
  peakBytes: number;
  /** Freed buffers kept for reuse (≥ 1 MiB each, at most `peakBytes` in all). */
  cachedBytes: number;
}

/** Figures for host memory, or for a GPU's caching allocator with `device` 'cuda:N'. */
export function memoryStats(device = 'cpu'): MemoryStats {
  return native.memoryStats(device);
}

/** Returns the buffers kept for reuse (on `device`) to the system. */
export function emptyCache(device = 'cpu'): void {
  native.emptyCache(device);
}

/** Waits for the work queued on `device` (GPU timings); the CPU has none. */
export function synchronize(device: string): void {
  native.synchronize(device);
}

/** Restarts `peakBytes` (of `device`) from the live bytes. */
export function resetPeakMemory(device = 'cpu'): void {
  native.resetPeakMemory(device);
}
