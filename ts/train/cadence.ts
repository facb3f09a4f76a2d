// When a run logs, verifies and checkpoints, by step (arcface_torch's verbose / frequent), and
// so when it reads its steps back from the device: only at those points, every step only for
// an onStep callback.

import type { ResolvedConfig } from './config';

export interface Due {
  /** Read the steps back (log, verify, checkpoint, the end, a stop, or every step). */
  readBack: boolean;
  verify: boolean;
  save: boolean;
}

export class Cadence {
  constructor(
    private readonly cfg: Pick<ResolvedConfig, 'logEvery' | 'verifyEvery' | 'checkpointEvery'>,
    readonly total: number,
    /** Read every step back (an onStep callback wants each). */
    private readonly everyStep: boolean,
  ) {}

  /** Whether `step` is a log point (a progress line and a metrics.jsonl row). */
  logs(step: number): boolean {
    return step % this.cfg.logEvery === 0 || step >= this.total;
  }

  /** What is due after `step`; `stopping`: the run stops there. The last step's verification
   *  and checkpoint are the run's final ones, not periodic. */
  at(step: number, stopping: boolean): Due {
    const verify = this.cfg.verifyEvery > 0 && step % this.cfg.verifyEvery === 0 && step < this.total;
    const save = this.cfg.checkpointEvery > 0 && step % this.cfg.checkpointEvery === 0 && step < this.total;
    return { readBack: this.everyStep || this.logs(step) || verify || save || stopping, verify, save };
  }
}
