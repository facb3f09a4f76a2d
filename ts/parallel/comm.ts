// The communicator between rank processes: collectives over tensors (in place, one flat
// bucket per call). CPU ranks talk over TCP through rank 0; every wait is bounded, so a rank
// that dies or stalls becomes an Error naming it.

import { native } from '../native';
import { Tensor } from '../tensor/tensor';
import { World } from './world';

export type ReduceOp = 'sum' | 'mean' | 'max';
/** How a sum's values travel: f32, or f16 (half the bytes; values and sum rounded to f16). */
export type Compression = 'none' | 'f16';

type NativeComm = ReturnType<typeof native.Comm.tcp>;

/** How much of a failing rank's message `everyRank` passes to the others (UTF-8 bytes). */
const MESSAGE_BYTES = 240;

export class Communicator {
  private constructor(readonly inner: NativeComm) {}

  /** Joins the world: rank 0 listens at the master address, the others connect to it. A
   *  single process needs no peers (it listens on a free port nobody uses). */
  static connect(w: World, { timeoutMs = 300_000 } = {}): Communicator {
    const addr = w.world === 1 ? '127.0.0.1:0' : `${w.masterAddr}:${w.masterPort}`;
    return new Communicator(native.Comm.tcp(w.rank, w.world, addr, timeoutMs));
  }

  /** Builds the NCCL communicator for tensors on `device` ('cuda:N'); every rank calls it
   *  together. Host tensors keep going over TCP. */
  attachGpu(device: string): void {
    const m = /^cuda:(\d+)$/.exec(device);
    if (m === null) throw new Error(`attachGpu: expected 'cuda:N', got '${device}'`);
    this.inner.attachGpu(Number(m[1]));
  }

  get rank(): number {
    return this.inner.rank;
  }

  get world(): number {
    return this.inner.world;
  }

  /** Reduces `tensors` over the ranks in place, as one bucket (GPU tensors: queued on the
   *  GPU's stream; see `drain`). */
  allReduce(tensors: Tensor[], op: ReduceOp = 'sum', compress: Compression = 'none'): void {
    if (tensors.length > 0 && this.world > 1) this.inner.allReduce(tensors.map((t) => t.handle('allReduce')), op, compress);
  }

  /** Starts reducing `tensors` in place in the background, after everything started
   *  before; returns the ticket `wait` takes. The tensors must be left alone until then. */
  allReduceStart(tensors: Tensor[], op: ReduceOp = 'sum', compress: Compression = 'none'): number {
    return this.inner.allReduceStart(tensors.map((t) => t.handle('allReduceStart')), op, compress);
  }

  /** Blocks until collective `ticket` and everything started before it are done (GPU
   *  collectives: queued on the GPU's stream, which orders whatever reads them; only an error
   *  NCCL already reported is raised here). */
  wait(ticket: number): void {
    this.inner.wait(ticket);
  }

  /** Waits, at most the timeout, for everything queued on this rank's GPU stream
   *  (collectives included): a dead or stalled rank becomes an Error here. Call it before reading GPU results back (host collectives
   *  are complete when their call returns). */
  drain(): void {
    this.inner.drain();
  }

  /** `values` reduced over the ranks (a few numbers: flags, losses to log). */
  allReduceValues(values: readonly number[], op: ReduceOp = 'sum'): number[] {
    if (this.world === 1) return [...values];
    const t = new Tensor(native.NativeTensor.fromFloat32(Float32Array.from(values), [values.length]));
    this.allReduce([t], op);
    const out = [...t.toFloat32Array()];
    t.dispose();
    return out;
  }

  /** Every rank's `tensors` take `root`'s values. */
  broadcast(tensors: Tensor[], root = 0): void {
    if (tensors.length > 0 && this.world > 1) this.inner.broadcast(tensors.map((t) => t.handle('broadcast')), root);
  }

  /** Every rank's `values` (equal lengths) in rank order. */
  allGather(values: Float32Array): Float32Array {
    return this.inner.allGather(values);
  }

  barrier(): void {
    this.inner.barrier();
  }

  /** Runs `f`, this rank's part of a step every rank takes, then tells every rank whether
   *  all succeeded (a barrier too): where one rank throws, each stops at once, the failing
   *  rank with its own error and the others with one naming it and its message, instead of
   *  waiting in their next collective until the timeout. */
  everyRank<T>(what: string, f: () => T): T {
    let out: { value: T } | { error: unknown };
    try {
      out = { value: f() };
    } catch (error) {
      out = { error };
    }
    if (this.world === 1) {
      if ('error' in out) throw out.error;
      return out.value;
    }
    const mine = new Float32Array(1 + MESSAGE_BYTES);
    if ('error' in out) {
      mine[0] = 1;
      const e = out.error;
      mine.set(new TextEncoder().encode(e instanceof Error ? e.message : String(e)).subarray(0, MESSAGE_BYTES), 1);
      try {
        this.allGather(mine);
      } catch {
        // A dead peer fails the gather too: this rank's own error says more.
      }
      throw e;
    }
    const all = this.allGather(mine);
    const failed = Array.from({ length: this.world }, (_, r) => r).filter((r) => all[r * mine.length] > 0);
    if (failed.length === 0) return out.value;
    const [r] = failed;
    const bytes = Uint8Array.from(all.subarray(r * mine.length + 1, (r + 1) * mine.length));
    const message = new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(0) < 0 ? bytes.length : bytes.indexOf(0)));
    const more = failed.length > 1 ? ` (rank ${failed.slice(1).join(', ')} failed too)` : '';
    throw new Error(`${what}: rank ${r} failed: ${message}${more}`);
  }
}
