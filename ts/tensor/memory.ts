import { native } from '../native';

export interface MemoryStats {
  /** Native tensor handles alive (views count separately). */
  liveTensors: number;
  /** Bytes of native storage alive. */
  liveBytes: number;
  /** Highest `liveBytes` since start or the last `resetPeakMemory()`. */
  peakBytes: number;
}

export function memoryStats(): MemoryStats {
  return native.memoryStats();
}

export function resetPeakMemory(): void {
  native.resetPeakMemory();
}
