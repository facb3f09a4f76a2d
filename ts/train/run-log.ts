// A run's log: the steps' numbers read back from the device (the only place a GPU step waits
// for the host), rank 0's progress line and metrics.jsonl (progress.ts), and the verification
// rounds. A non-finite loss or gradient found here stops the run; its step was not applied
// (the optimiser's gate skipped it).

import fs from 'node:fs';
import path from 'node:path';
import { Module } from '../nn/module';
import { writeFileAtomic } from '../io/atomic';
import { Communicator } from '../parallel/comm';
import { broadcastBuffers } from '../parallel/data-parallel';
import { VerificationSet } from '../data/verification-bin';
import type { Skipped } from '../data/loader';
import { verify, VerificationResult } from '../eval/verification';
import { NonFiniteTensor } from '../models/weights';
import type { LossScaler } from '../optim/loss-scaler';
import type { Cadence } from './cadence';
import type { ResolvedConfig } from './config';
import { Metrics, MetricsLog, Progress } from './progress';
import { StepLog } from './step-log';
import type { TrainOptions } from './trainer';

/** A loss or gradient that is NaN or infinite (the run stops before applying it), or a
 *  tensor of a checkpoint (the run stops without writing it). */
export class NonFiniteLoss extends Error {}

export interface RunLogOptions extends Pick<TrainOptions, 'quiet' | 'onStep' | 'onVerify'> {
  /** The step the run starts from (a resumed run's). */
  from: number;
  perEpoch: number;
  scaler: LossScaler | null;
  /** With skipCorrupt: this rank's corrupt samples skipped in the current epoch so far. */
  skipped?: () => Readonly<Skipped>;
}

/** A resumed run continues its log from the checkpoint's step: the rows of later steps (written
 *  before a crash, and about to be written again) and a torn last line are dropped, atomically. */
function keepRowsUpTo(file: string, step: number): void {
  if (!fs.existsSync(file)) return;
  const rows = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
  const keep = rows.filter((l) => {
    try {
      return (JSON.parse(l) as { step: number }).step <= step;
    } catch {
      return false;
    }
  });
  if (keep.length === rows.length) return;
  writeFileAtomic(file, keep.map((l) => `${l}\n`));
}

export class RunLog {
  /** Each step's numbers, on the device until `flush`. */
  readonly steps: StepLog;
  /** The mean loss of the last logged steps, and the rate then. */
  last = { loss: NaN, imagesPerSecond: NaN };
  private window = { loss: 0, n: 0 };
  private readonly lead: boolean;
  private readonly metrics: MetricsLog | null;
  private readonly progress: Progress | null;

  constructor(
    private readonly cfg: ResolvedConfig,
    private readonly comm: Communicator,
    private readonly cadence: Cadence,
    private readonly o: RunLogOptions,
  ) {
    this.steps = new StepLog(comm);
    this.lead = comm.rank === 0;
    fs.mkdirSync(cfg.output, { recursive: true });
    if (this.lead) fs.writeFileSync(path.join(cfg.output, 'config.json'), JSON.stringify(cfg, null, 2));
    const metrics = path.join(cfg.output, 'metrics.jsonl');
    if (this.lead) keepRowsUpTo(metrics, o.from);
    this.metrics = this.lead ? new MetricsLog(metrics) : null;
    this.progress = this.lead && o.quiet !== true ? new Progress(cadence.total, o.from, cfg.batchSize * comm.world * cfg.gradAccumulation) : null;
  }

  /** Runs `f` off the progress clock (verification, checkpoints). */
  offClock<T>(f: () => T): T {
    return this.progress === null ? f() : this.progress.aside(f);
  }

  /** A line of its own on rank 0's progress output. */
  say(line: string): void {
    this.progress?.say(line);
  }

  /** Reads back every step closed since the last flush, after `batches` micro-batches; writes
   *  the log points. `resumeFrom` says where a run stopped here could continue. */
  flush(batches: number, resumeFrom: string): void {
    this.comm.drain(); // GPU ranks: bounded, so a dead rank is an error here, not a hung read
    const scaler = this.o.scaler;
    // The corrupt samples skipped in this epoch so far, summed over the ranks (every rank
    // flushes at the same steps); the first few named are rank 0's.
    const skipped = this.o.skipped?.();
    const skippedCount = skipped === undefined ? 0 : this.comm.allReduceValues([skipped.count], 'sum')[0];
    for (const v of this.steps.read()) {
      if (!Number.isFinite(v.loss) || (scaler === null && !v.applied)) {
        throw new NonFiniteLoss(`step ${v.step}: the loss is ${v.loss} and the gradient norm ${v.gradNorm}; the step was not applied; ${resumeFrom}`);
      }
      this.o.onStep?.(v.step, { loss: v.loss, cosface: v.cosface, kd: v.kd, lr: v.lr });
      this.window = { loss: this.window.loss + v.loss, n: this.window.n + 1 };
      if (!this.cadence.logs(v.step)) continue;
      const rate = this.progress?.rate(v.step) ?? { imagesPerSecond: NaN };
      this.last = { loss: this.window.loss / this.window.n, imagesPerSecond: rate.imagesPerSecond };
      this.window = { loss: 0, n: 0 };
      const fields: { loss: number; lr: number; [k: string]: number } =
        this.cfg.teacher === undefined ? { loss: this.last.loss, lr: v.lr } : { loss: this.last.loss, lr: v.lr, cosface: v.cosface, kd: v.kd, lambda: v.lambda };
      if (scaler !== null) Object.assign(fields, { lossScale: scaler.scale, overflowSteps: scaler.overflowSteps });
      if (skipped !== undefined) fields.skipped = skippedCount;
      this.progress?.update(v.step, fields);
      const first: Metrics = skipped !== undefined && skipped.first.length > 0 ? { skippedFirst: skipped.first } : {};
      this.metrics?.write({ step: v.step, epoch: Math.floor((batches - 1) / this.o.perEpoch), ...fields, ...first, gradNorm: v.gradNorm, imagesPerSecond: rate.imagesPerSecond });
    }
  }

  /** Scores `model` on every set at `step` (BatchNorm statistics from rank 0, every rank its
   *  share of the pairs); rank 0 reports. `resumeFrom` as for `flush`. */
  verify(step: number, model: Module, sets: { name: string; set: VerificationSet }[], resumeFrom: string): VerificationResult[] {
    broadcastBuffers(this.comm, model);
    const results = this.offClock(() => {
      try {
        return sets.map((s) => verify(model, s.set, { name: s.name, comm: this.comm }));
      } catch (e) {
        // Non-finite embeddings (BatchNorm statistics the loss check does not see) stop the run.
        if (e instanceof NonFiniteTensor) throw new NonFiniteLoss(`step ${step}: ${e.message}; ${resumeFrom}`);
        throw e;
      }
    });
    if (this.lead) {
      this.say(`step ${step}: ${results.map((v) => `${v.name} ${(100 * v.accuracy).toFixed(2)}% ± ${(100 * v.std).toFixed(2)}`).join(', ')}`);
      this.metrics?.write({ step, verification: results });
      this.o.onVerify?.(step, results);
    }
    return results;
  }

  /** Drops what was not read (a run that stopped) and ends the progress line. */
  close(): void {
    this.steps.close();
    this.progress?.done();
  }
}
