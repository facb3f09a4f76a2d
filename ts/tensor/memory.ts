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

export function memoryStats(): MemoryStats {
  return native.memoryStats();
}

/** Returns the buffers kept for reuse to the system. */
export function emptyCache(): void {
  native.emptyCache();
}

export function resetPeakMemory(): void {
  native.resetPeakMemory();
}
