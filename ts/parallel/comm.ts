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
}
