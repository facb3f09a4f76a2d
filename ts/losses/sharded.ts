// The sharded (model-parallel) margin-softmax classifier, arcface_torch's partial FC: this
// rank holds only its slice of the class centres; the native step all-gathers the global
// batch, makes the softmax global and returns the loss with both gradients, on the CPU or
// on the GPU the centres were moved to.

import { native } from '../native';
import { Tensor } from '../tensor/tensor';
import { nextSeed, randn } from '../tensor/random';
import * as ops from '../tensor/ops';
import { Module } from '../nn/module';
import { Communicator } from '../parallel/comm';
import { CENTRE_STD, COSFACE } from './margin';

/** Classes scored at a time: the step's working memory stays a few chunk × D and B × chunk
 *  buffers whatever the number of classes. */
export const DEFAULT_CHUNK = 8192;

export interface ShardedOptions {
  margin?: ops.Margin;
  /** Negative-class sampling rate ρ (1: the full softmax; 0.2–0.3 in the WebFace42M recipes). */
  sampleRate?: number;
  /** Classes scored at a time (0: the whole sampled shard at once; DEFAULT_CHUNK by default). */
  chunk?: number;
  /** Seeds the class centres (the same on every world size) and the negative sampling. */
  seed?: number;
}

export class ShardedMarginSoftmax extends Module {
  /** This rank's class centres `[count, embedding]`: rows `first…first + count − 1` of the
   *  N(0, CENTRE_STD²) matrix a single process would draw from the same seed. */
  readonly weight: Tensor;
  readonly first: number;
  readonly count: number;
  readonly margin: ops.Margin;
  readonly sampleRate: number;
  readonly chunk: number;
  readonly seed: number;

  constructor(
    readonly comm: Communicator,
    readonly embedding: number,
    readonly classes: number,
    { margin = COSFACE, sampleRate = 1, chunk = DEFAULT_CHUNK, seed = nextSeed() }: ShardedOptions = {},
  ) {
    super();
    if (!(sampleRate > 0 && sampleRate <= 1)) throw new Error(`ShardedMarginSoftmax: sampleRate must be in (0, 1], got ${sampleRate}`);
    [this.first, this.count] = native.classShard(classes, comm.world, comm.rank);
    this.margin = margin;
    this.sampleRate = sampleRate;
    this.chunk = chunk;
    this.seed = seed;
    this.weight = this.param('weight', randn([this.count, embedding], { std: CENTRE_STD, seed, offset: this.first * embedding }));
  }

  forward(embeddings: Tensor): Tensor {
    return ops.matmul(ops.l2Normalize(embeddings), ops.l2Normalize(this.weight), { transB: true });
  }

  /** The mean loss over the global batch at iteration `step` (which seeds the negative
   *  sampling), with this rank's `embeddings [b, D]` and global class `labels`. Call it on
   *  every rank together. Runs on the centres' device (the embeddings are moved there; GPU
   *  ranks exchange through the NCCL communicator) and reads nothing back. The embedding
   *  gradient is scaled by the world size, as arcface_torch's, because the data-parallel
   *  average divides it again. */
  loss(embeddings: Tensor, labels: Int32Array | readonly number[], step: number): Tensor {
    const lab = labels instanceof Int32Array ? labels : Int32Array.from(labels);
    const e = ops.to(embeddings, this.weight.device);
    const r = native.partialFcStep(this.comm.inner, this.weight.handle('partialFc'), e.handle('partialFc'), lab, step, {
      start: this.first,
      classes: this.classes,
      s: this.margin.s,
      mArc: this.margin.mArc,
      mCos: this.margin.mCos,
      sampleRate: this.sampleRate,
      seed: this.seed,
      chunk: this.chunk,
    });
    let gradEmbeddings = new Tensor(r.gradEmbeddings);
    if (this.comm.world > 1) {
      const scaled = new Tensor(native.scale(r.gradEmbeddings, this.comm.world));
      gradEmbeddings.dispose();
      gradEmbeddings = scaled;
    }
    return ops.fusedLoss(new Tensor(r.loss), [e, this.weight], [gradEmbeddings, new Tensor(r.gradWeight)]);
  }
}
