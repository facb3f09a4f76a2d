// Training checkpoints that resume exactly: every module's state dict (arcface_torch names),
// the optimisers' momentum buffers and a small JSON of counters. Every rank writes its own
// files under step-stamped names (each a temp file + rename); once all have, rank 0 commits
// `state.json` (also atomic), which names the step: a crash at any point leaves the previous
// checkpoint whole. Only then are the previous step's files removed.

import fs from 'node:fs';
import path from 'node:path';
import { Module } from '../nn/module';
import { SGD } from '../optim/sgd';
import { tensor } from '../tensor/tensor';
import { tidy } from '../tensor/scope';
import { native } from '../native';
import { loadCheckpoint, saveCheckpoint } from '../models/weights';
import { readSafetensors, writeSafetensors, entryValues, StEntry } from '../io/safetensors';
import { Communicator } from '../parallel/comm';
import type { LossScaler } from '../optim/loss-scaler';

export interface TrainingCounters {
  step: number;
  epoch: number;
  [name: string]: number | string;
}

/** What one rank saves: modules by name (a rank's own shard under a rank-specific name) and
 *  optimisers by name. */
export interface TrainingParts {
  modules: Record<string, Module>;
  optimizers: Record<string, SGD>;
}

interface StateFile {
  counters: TrainingCounters;
  stamp: string;
  world: number;
}

const optimizerFile = (stamp: string, rank: number, world: number) => `optimizer${world > 1 ? `.rank${rank}` : ''}-${stamp}.safetensors`;
const ownFiles = (parts: TrainingParts, stamp: string, rank: number, world: number) => [
  ...Object.keys(parts.modules).map((m) => `${m}-${stamp}.safetensors`),
  optimizerFile(stamp, rank, world),
];

function readState(dir: string): StateFile | null {
  const f = path.join(dir, 'state.json');
  return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as StateFile) : null;
}

/** Saves this rank's parts at `counters.step`; with a communicator every rank must call it. */
export function saveTrainingState(dir: string, parts: TrainingParts, counters: TrainingCounters, comm: Communicator | null = null): void {
  const [rank, world] = comm === null ? [0, 1] : [comm.rank, comm.world];
  fs.mkdirSync(dir, { recursive: true });
  const stamp = String(counters.step).padStart(8, '0');
  const previous = readState(dir);
  for (const [name, m] of Object.entries(parts.modules)) saveCheckpoint(m, path.join(dir, `${name}-${stamp}.safetensors`));
  const buffers = new Map<string, StEntry>();
  const lrs: Record<string, string> = {};
  for (const [name, opt] of Object.entries(parts.optimizers)) {
    opt.buffers.forEach((b, i) => buffers.set(`${name}.momentum.${i}`, { dtype: 'F32', shape: [...b.shape], data: new Uint8Array(b.toFloat32Array().buffer) }));
    lrs[`${name}.lr`] = String(opt.lr);
  }
  writeSafetensors(path.join(dir, optimizerFile(stamp, rank, world)), buffers, lrs);
  comm?.barrier();
  if (rank === 0) {
    const tmp = path.join(dir, `.state.json.${process.pid}.tmp`);
    fs.writeFileSync(tmp, JSON.stringify({ counters, stamp, world } satisfies StateFile, null, 2));
    fs.renameSync(tmp, path.join(dir, 'state.json'));
  }
  comm?.barrier();
  // Only now is the old set unreferenced.
  if (previous !== null && previous.stamp !== stamp) {
    for (const f of ownFiles(parts, previous.stamp, rank, world)) fs.rmSync(path.join(dir, f), { force: true });
  }
}

/** The counters of the checkpoint in `dir`, or null when there is none. */
export function checkpointCounters(dir: string): TrainingCounters | null {
  return readState(dir)?.counters ?? null;
}

/** Restores this rank's parts from `dir`; returns the counters to continue from. */
export function loadTrainingState(dir: string, parts: TrainingParts, comm: Communicator | null = null): TrainingCounters {
  const [rank, world] = comm === null ? [0, 1] : [comm.rank, comm.world];
  const state = readState(dir);
  if (state === null) throw new Error(`${dir}: no training checkpoint (state.json missing)`);
  if (state.world !== world) {
    throw new Error(`${dir}: the checkpoint was written by ${state.world} ranks, this run has ${world} (the classifier shards would not match)`);
  }
  const has = fs.readdirSync(dir).filter((f) => f.endsWith(`-${state.stamp}.safetensors`)).map((f) => f.slice(0, -`-${state.stamp}.safetensors`.length));
  const missing = ownFiles(parts, state.stamp, rank, world).filter((f) => !fs.existsSync(path.join(dir, f)));
  if (missing.length > 0) {
    throw new Error(`${dir}: the checkpoint of step ${state.counters.step} has no ${missing.join(', ')} (it has ${has.join(', ')})`);
  }
  for (const [name, m] of Object.entries(parts.modules)) loadCheckpoint(m, path.join(dir, `${name}-${state.stamp}.safetensors`));
  const file = path.join(dir, optimizerFile(state.stamp, rank, world));
  const st = readSafetensors(file);
  tidy(() => {
    for (const [name, opt] of Object.entries(parts.optimizers)) {
      opt.buffers.forEach((b, i) => {
        const e = st.tensors.get(`${name}.momentum.${i}`);
        if (e === undefined) throw new Error(`${file}: no momentum ${i} of optimizer '${name}' (the run's optimisers differ from the checkpoint's)`);
        if (e.shape.join() !== b.shape.join()) throw new Error(`${file}: momentum ${i} of '${name}' has shape [${e.shape.join(', ')}], the parameter [${b.shape.join(', ')}]`);
        native.copyInto(b.handle('loadTrainingState'), tensor(new Float32Array(entryValues(e)), e.shape).handle('loadTrainingState'));
      });
      opt.lr = Number(st.metadata[`${name}.lr`]);
    }
  });
  return state.counters;
}

/** A run's backbone, its classifier (this rank's shard) and their optimisers. */
export interface RunParts {
  backbone: Module;
  head: Module;
  backboneOptimizer: SGD;
  headOptimizer: SGD;
}

/** A training run's checkpoints in `dir`: what this rank saves (the backbone is the same on
 *  every rank, so rank 0 saves it; each rank saves its shard), f16's loss-scale state among
 *  the counters, and the step of the last one written. */
export class RunCheckpoints {
  /** The step of the last checkpoint in `dir` (null: none yet). */
  lastGood: number | null;
  private readonly parts: TrainingParts;

  constructor(
    readonly dir: string,
    private readonly comm: Communicator,
    run: RunParts,
    private readonly scaler: LossScaler | null,
  ) {
    const head = comm.world > 1 ? `head.rank${comm.rank}` : 'head';
    this.parts =
      comm.rank === 0
        ? { modules: { backbone: run.backbone, [head]: run.head }, optimizers: { backbone: run.backboneOptimizer, head: run.headOptimizer } }
        : { modules: { [head]: run.head }, optimizers: { head: run.headOptimizer } };
    this.lastGood = checkpointCounters(dir)?.step ?? null;
  }

  /** Restores this rank's parts and the scaler; returns the step and micro-batch to continue
   *  from. Only rank 0 reads the backbone and its momentum: broadcast them after. */
  resume(): { step: number; batches: number } {
    if (this.lastGood === null) throw new Error(`--resume: no checkpoint in ${this.dir}`);
    const c = loadTrainingState(this.dir, this.parts, this.comm);
    if (this.scaler !== null && c.lossScale !== undefined) this.scaler.restore(Number(c.lossScale), Number(c.scalerGoodSteps), Number(c.overflowSteps));
    return { step: c.step, batches: Number(c.batches) };
  }

  /** Every rank saves at `step`, after `batches` micro-batches in `epoch`. */
  save(step: number, epoch: number, batches: number): void {
    const s = this.scaler;
    const scaling: Record<string, number> = s === null ? {} : { lossScale: s.scale, scalerGoodSteps: s.goodSteps, overflowSteps: s.overflowSteps };
    saveTrainingState(this.dir, this.parts, { step, epoch, batches, ...scaling }, this.comm);
    this.lastGood = step;
  }

  /** Where a run stopped now could continue from. */
  resumeFrom(): string {
    return this.lastGood === null ? 'no checkpoint was written yet' : `the last good checkpoint is ${this.dir} (step ${this.lastGood})`;
  }
}
