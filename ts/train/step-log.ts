// What each optimiser step leaves for the log, kept as 0-d tensors on the step's device until
// the trainer reads them (at log, checkpoint and verification points, or every step for an
// onStep callback): a GPU step never waits for the host to look at its loss.

import { Tensor } from '../tensor/tensor';
import { keep, noGrad } from '../tensor/scope';
import * as ops from '../tensor/ops';
import { Communicator } from '../parallel/comm';

export interface StepValues {
  step: number;
  lr: number;
  /** The convex objective's (1 − λ)·CosFace + λ·KD, the micro-batches' mean. */
  loss: number;
  cosface: number;
  /** The KD term's mean over the ranks (0 without a teacher). */
  kd: number;
  lambda: number;
  /** The unscaled gradient norm before clipping (of the backbone). */
  gradNorm: number;
  /** Whether the update was applied (the gate was finite). */
  applied: boolean;
}

export interface StepEnd {
  step: number;
  lr: number;
  lambda: number;
  /** The optimiser's gate: NaN means the step was skipped. */
  gate: Tensor;
  /** Σ‖g‖² of the backbone's (scaled) gradients. */
  sumsq: Tensor;
  /** The loss scale they carry (0-d, a copy taken before the update; null without scaling). */
  scale: Tensor | null;
}

interface Pending extends StepEnd {
  cos: Tensor;
  kd: Tensor | null;
}

/** Adds `x` into the kept running sum `acc` (disposing the old one). */
function accumulate(acc: Tensor | null, x: Tensor): Tensor {
  return noGrad(() => {
    const s = keep(acc === null ? ops.scale(x, 1) : ops.add(acc, x));
    acc?.dispose();
    return s;
  });
}

export class StepLog {
  private pending: Pending[] = [];
  private cos: Tensor | null = null;
  private kd: Tensor | null = null;
  private micro = 0;

  constructor(private readonly comm: Communicator) {}

  /** A micro-batch's CosFace and KD losses (0-d), summed on their device. */
  addMicroBatch(cos: Tensor, kd: Tensor | null): void {
    this.cos = accumulate(this.cos, cos);
    if (kd !== null) this.kd = accumulate(this.kd, kd);
    this.micro++;
  }

  /** Closes a step: takes ownership of `end`'s tensors. The KD term is averaged
   *  over the ranks here, on the device (every rank calls this at every step). */
  endStep(end: StepEnd): void {
    const [cos, kd] = noGrad(() => [this.cos, this.kd].map((t) => (t === null ? null : keep(ops.scale(t, 1 / this.micro)))));
    if (kd !== null) this.comm.allReduce([kd], 'mean');
    this.pending.push({ ...end, cos: cos!, kd });
    [this.cos, this.kd].forEach((t) => t?.dispose());
    [this.cos, this.kd, this.micro] = [null, null, 0];
  }

  /** Every closed step not read yet, oldest first (reads the device). */
  read(): StepValues[] {
    const out = this.pending.map((p) => {
      const [cosface, kd] = [p.cos.item(), p.kd?.item() ?? 0];
      return {
        step: p.step,
        lr: p.lr,
        loss: cosface * (1 - p.lambda) + kd * p.lambda,
        cosface,
        kd,
        lambda: p.lambda,
        gradNorm: Math.sqrt(p.sumsq.item()) / (p.scale?.item() ?? 1),
        applied: Number.isFinite(p.gate.item()),
      };
    });
    this.dispose();
    return out;
  }

  dispose(): void {
    for (const p of this.pending) [p.cos, p.kd, p.gate, p.sumsq, p.scale].forEach((t) => t?.dispose());
    this.pending = [];
  }

  /** Also drops a step left open (a run that stopped half-way through one). */
  close(): void {
    this.dispose();
    [this.cos, this.kd].forEach((t) => t?.dispose());
    [this.cos, this.kd, this.micro] = [null, null, 0];
  }
}
