// Data-parallel gradient averaging that overlaps the backward, as torch DDP's buckets:
// parameters are grouped, last layer first (the order the backward reaches them), into
// buckets of about `bucketBytes`; once every parameter of a bucket and of the buckets before
// it has its gradient, its all-reduce starts in the background while the backward goes on;
// `finish()` waits for the last. Buckets start strictly in order, as DDP's do: a parameter
// one rank's batch leaves without a gradient (an MoE head no sample of it took) must not
// make that rank send its buckets in another order than the others (collectives pair by
// order). Each element is summed in rank order either way: the result equals one big
// synchronous all-reduce exactly. `compress: 'f16'` sends each bucket as f16 (half the
// bytes; gradients and their sum rounded to f16).

import { Tensor, zeros } from '../tensor/tensor';
import { keep } from '../tensor/scope';
import { onLeafGradient } from '../autograd/tape';
import { Communicator, Compression } from './comm';

export class GradientBuckets {
  readonly buckets: Tensor[][];
  private readonly bucketOf = new Map<Tensor, number>();
  private pending: number[] = [];
  /** The next bucket to start: every one before it has started. */
  private next = 0;
  private tickets: number[] = [];

  readonly compress: Compression;

  constructor(
    readonly comm: Communicator,
    params: Tensor[],
    { bucketBytes = 25 * 2 ** 20, compress = 'none' as Compression } = {},
  ) {
    this.compress = compress;
    const buckets: Tensor[][] = [[]];
    let bytes = 0;
    for (const p of params.filter((q) => q.requiresGrad).reverse()) {
      if (bytes > 0 && bytes + 4 * p.numel > bucketBytes) {
        buckets.push([]);
        bytes = 0;
      }
      buckets.at(-1)!.push(p);
      bytes += 4 * p.numel;
    }
    this.buckets = buckets.filter((b) => b.length > 0);
    this.buckets.forEach((b, i) => b.forEach((p) => this.bucketOf.set(p, i)));
  }

  /** Arms the hook for one backward: call before it. */
  begin(): void {
    this.pending = this.buckets.map((b) => b.length);
    this.next = 0;
    this.tickets = [];
    const seen = new Set<Tensor>();
    onLeafGradient((t) => {
      const i = this.bucketOf.get(t);
      if (i === undefined || seen.has(t)) return;
      seen.add(t);
      --this.pending[i];
      while (this.next < this.buckets.length && this.pending[this.next] === 0) this.launchNext();
    });
  }

  private launchNext(): void {
    const bucket = this.buckets[this.next++];
    for (const p of bucket) if (p.grad === null) p.grad = keep(zeros(p.shape, p.device));
    this.tickets.push(this.comm.allReduceStart(bucket.map((p) => p.grad!), 'mean', this.compress));
  }

  /** After the backward: starts what is left (parameters that got no gradient contribute
   *  zeros) and waits for every bucket (a GPU's buckets are queued on its stream, ahead of
   *  the optimiser that reads them: nothing to wait for on the host). */
  finish(): void {
    onLeafGradient(null);
    while (this.next < this.buckets.length) this.launchNext();
    for (const t of this.tickets) this.comm.wait(t);
    this.tickets = [];
  }
}
