// Training checkpoints that resume exactly: every module's state dict (arcface_torch names),
// the optimisers' momentum buffers and a small JSON of counters. Every rank writes its own
// files under step-stamped names (each a temp file + rename); once all have, rank 0 commits
// `state.json` (also atomic), which names the step: a crash at any point leaves the previous
// checkpoint whole. Only then are the previous step's files (and any an interrupted save left)
// removed. File names come from the step and names in code, never from a file's contents.

import fs from 'node:fs';
import path from 'node:path';
import { Module } from '../nn/module';
import { SGD } from '../optim/sgd';
import { tensor } from '../tensor/tensor';
import { tidy } from '../tensor/scope';
import { native } from '../native';
import { loadCheckpoint, nonFiniteAt, NonFiniteTensor, stateEntries } from '../models/weights';
import { readSafetensors, writeSafetensors, entryValues, StEntry } from '../io/safetensors';
import { writeFileAtomic } from '../io/atomic';
import { Communicator } from '../parallel/comm';
import type { LossScaler } from '../optim/loss-scaler';
import { NonFiniteLoss } from './run-log';

export interface TrainingCounters {
  step: number;
  epoch: number;
  [name: string]: number | string | number[];
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

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
// File names are built only from a validated step and names from code, never from what a file says.
const stampOf = (step: number) => String(step).padStart(8, '0');
const optimizerName = (rank: number, world: number) => `optimizer${world > 1 ? `.rank${rank}` : ''}`;
const ownNames = (parts: TrainingParts, rank: number, world: number) => [...Object.keys(parts.modules), optimizerName(rank, world)];
const fileOf = (name: string, stamp: string) => `${name}-${stamp}.safetensors`;
/** A temp file of `name` as writeFileAtomic names them. */
const TEMP = /^\.(.+)\.\d+\.tmp$/;

function readState(dir: string): StateFile | null {
  const f = path.join(dir, 'state.json');
  if (!fs.existsSync(f)) return null;
  const bad = (why: string): never => {
    throw new Error(`${f}: not a usable training state (${why}); it is written whole, so it was cut short or changed outside maskfr: restore it, or start the run again with --overwrite or in a new output folder`);
  };
  let s: StateFile;
  try {
    s = JSON.parse(fs.readFileSync(f, 'utf8')) as StateFile;
  } catch (e) {
    return bad((e as Error).message);
  }
  const c = s?.counters;
  if (!isCount(c?.step) || !isCount(c.epoch)) bad('counters.step and counters.epoch must be integers ≥ 0');
  if (!Number.isSafeInteger(s.world) || s.world < 1) bad(`world must be an integer ≥ 1, got ${JSON.stringify(s.world)}`);
  if (s.stamp !== stampOf(c.step)) bad(`stamp ${JSON.stringify(s.stamp)} is not step ${c.step}'s ${stampOf(c.step)}`);
  if (c.skipped !== undefined && !(Array.isArray(c.skipped) && c.skipped.length === s.world && c.skipped.every(isCount))) {
    bad(`counters.skipped must be one integer ≥ 0 per rank (${s.world}), got ${JSON.stringify(c.skipped)}`);
  }
  return s;
}

/** This rank's files in `dir` that no checkpoint needs: other steps' (the previous checkpoint,
 *  or a save cut short) and temp files an interrupted save left. Known names only. */
function removeStale(dir: string, names: string[], keep: string, rank: number): void {
  for (const f of fs.readdirSync(dir)) {
    const temp = TEMP.exec(f)?.[1];
    const m = /^(.+)-(\d{8,})\.safetensors$/.exec(temp ?? f);
    const stale = m !== null && names.includes(m[1]) && (temp !== undefined || m[2] !== keep);
    if (stale || (rank === 0 && temp === 'state.json')) fs.rmSync(path.join(dir, f), { force: true });
  }
}

/** Saves this rank's parts at `counters.step`; with a communicator every rank must call it.
 *  Every tensor and counter is read once and checked before any file is written: a NaN or
 *  infinite one on any rank and no rank writes (NonFiniteTensor, naming it). */
export function saveTrainingState(dir: string, parts: TrainingParts, counters: TrainingCounters, comm: Communicator | null = null): void {
  const [rank, world] = comm === null ? [0, 1] : [comm.rank, comm.world];
  if (!isCount(counters.step)) throw new Error(`saveTrainingState: the step must be an integer ≥ 0, got ${counters.step}`);
  const stamp = stampOf(counters.step);
  const files = new Map<string, { entries: Map<string, StEntry>; metadata: Record<string, string> }>();
  let bad: string | null = null;
  try {
    for (const [name, m] of Object.entries(parts.modules)) files.set(fileOf(name, stamp), { entries: stateEntries(m, `module '${name}'`), metadata: { format: 'pt' } });
    const buffers = new Map<string, StEntry>();
    const lrs: Record<string, string> = {};
    for (const [name, opt] of Object.entries(parts.optimizers)) {
      opt.buffers.forEach((b, i) => {
        const v = b.toFloat32Array();
        const at = nonFiniteAt(v);
        if (at !== null) throw new NonFiniteTensor(`momentum ${i} of optimizer '${name}' holds ${at}`);
        buffers.set(`${name}.momentum.${i}`, { dtype: 'F32', shape: [...b.shape], data: new Uint8Array(v.buffer) });
      });
      if (!Number.isFinite(opt.lr)) throw new NonFiniteTensor(`the learning rate of optimizer '${name}' is ${opt.lr}`);
      lrs[`${name}.lr`] = String(opt.lr);
    }
    files.set(fileOf(optimizerName(rank, world), stamp), { entries: buffers, metadata: lrs });
    for (const [k, v] of Object.entries(counters)) if (typeof v === 'number' && !Number.isFinite(v)) throw new NonFiniteTensor(`counter ${k} is ${v}`);
  } catch (e) {
    if (!(e instanceof NonFiniteTensor)) throw e;
    bad = e.message;
  }
  // All ranks write, or none: state.json must not name a step some rank did not save.
  const flags = comm === null ? [bad === null ? 0 : 1] : [...comm.allGather(new Float32Array([bad === null ? 0 : 1]))];
  const badRanks = flags.flatMap((f, r) => (f > 0 ? [r] : []));
  if (badRanks.length > 0) throw new NonFiniteTensor(bad ?? `rank ${badRanks.join(', ')} holds a NaN or infinite value`);
  fs.mkdirSync(dir, { recursive: true });
  for (const [f, { entries, metadata }] of files) writeSafetensors(path.join(dir, f), entries, metadata);
  comm?.barrier();
  if (rank === 0) {
    writeFileAtomic(path.join(dir, 'state.json'), [JSON.stringify({ counters, stamp, world } satisfies StateFile, null, 2)]);
  }
  comm?.barrier();
  // Only now is the old set unreferenced.
  removeStale(dir, ownNames(parts, rank, world), stamp, rank);
}

/** The counters of the checkpoint in `dir`, or null when there is none. */
export function checkpointCounters(dir: string): TrainingCounters | null {
  return readState(dir)?.counters ?? null;
}

/** Restores this rank's parts from `dir`; returns the counters to continue from. Refuses a
 *  NaN or infinite value. */
export function loadTrainingState(dir: string, parts: TrainingParts, comm: Communicator | null = null): TrainingCounters {
  const [rank, world] = comm === null ? [0, 1] : [comm.rank, comm.world];
  const state = readState(dir);
  if (state === null) throw new Error(`${dir}: no training checkpoint (state.json missing)`);
  if (state.world !== world) {
    throw new Error(`${dir}: the checkpoint was written by ${state.world} ranks, this run has ${world} (the classifier shards would not match)`);
  }
  const stamp = stampOf(state.counters.step);
  const has = fs.readdirSync(dir).filter((f) => f.endsWith(`-${stamp}.safetensors`)).map((f) => f.slice(0, -`-${stamp}.safetensors`.length));
  const missing = ownNames(parts, rank, world).map((n) => fileOf(n, stamp)).filter((f) => !fs.existsSync(path.join(dir, f)));
  if (missing.length > 0) {
    throw new Error(`${dir}: the checkpoint of step ${state.counters.step} has no ${missing.join(', ')} (it has ${has.join(', ')})`);
  }
  for (const [name, m] of Object.entries(parts.modules)) loadCheckpoint(m, path.join(dir, fileOf(name, stamp)));
  const file = path.join(dir, fileOf(optimizerName(rank, world), stamp));
  const st = readSafetensors(file);
  tidy(() => {
    for (const [name, opt] of Object.entries(parts.optimizers)) {
      opt.buffers.forEach((b, i) => {
        const e = st.tensors.get(`${name}.momentum.${i}`);
        if (e === undefined) throw new Error(`${file}: no momentum ${i} of optimizer '${name}' (the run's optimisers differ from the checkpoint's)`);
        if (e.shape.join() !== b.shape.join()) throw new Error(`${file}: momentum ${i} of '${name}' has shape [${e.shape.join(', ')}], the parameter [${b.shape.join(', ')}]`);
        const v = new Float32Array(entryValues(e));
        const at = nonFiniteAt(v);
        if (at !== null) throw new Error(`${file}: momentum ${i} of '${name}' holds ${at}`);
        native.copyInto(b.handle('loadTrainingState'), tensor(v, e.shape).handle('loadTrainingState'));
      });
      const lr = Number(st.metadata[`${name}.lr`]);
      if (!Number.isFinite(lr)) throw new Error(`${file}: the learning rate of '${name}' is ${JSON.stringify(st.metadata[`${name}.lr`])}`);
      opt.lr = lr;
    }
  });
  removeStale(dir, ownNames(parts, rank, world), stamp, rank);
  return state.counters;
}

/** The names the trainer writes in a run's folder and in its checkpoint folder. */
const RUN_NAMES = /^(config\.json|init\.json|metrics\.jsonl|model\.safetensors)$/;
const CHECKPOINT_NAMES = /^(state\.json|(backbone|head|optimizer)(\.rank\d+)?-\d{8,}\.safetensors)$/;

/** The trainer's files (and their temp files) in `dir`; nothing else. */
function trainerFiles(dir: string, names: RegExp): string[] {
  if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => names.test(TEMP.exec(f)?.[1] ?? f))
    .sort()
    .map((f) => path.join(dir, f));
}

/** A new run in `output`: refused when the folder holds a run (all ranks agree before any
 *  writes), unless `overwrite`, which removes that run's files — the trainer's known names
 *  only, inside the folder. */
function claimOutput(output: string, checkpoints: string, comm: Communicator, overwrite: boolean): void {
  const found = [...trainerFiles(output, RUN_NAMES), ...trainerFiles(checkpoints, CHECKPOINT_NAMES)];
  const counts = comm.allGather(new Float32Array([found.length]));
  if (!overwrite && counts.some((n) => n > 0)) {
    const what = found.length === 0 ? `files on rank ${counts.findIndex((n) => n > 0)}` : found.map((f) => path.relative(output, f)).slice(0, 4).join(', ') + (found.length > 4 ? ', …' : '');
    throw new Error(
      `${output} holds a run (${what}): continue it with --resume, start it over there with --overwrite (removes its checkpoints, metrics.jsonl, config.json, init.json and model.safetensors), or give another output folder`,
    );
  }
  // No rank writes before every rank has removed; one that cannot stops them all.
  comm.everyRank('start-up', () => found.forEach((f) => fs.rmSync(f, { force: true })));
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
  /** The step of the last checkpoint written or resumed from, each verified finite (null: none yet). */
  lastGood: number | null = null;
  readonly dir: string;
  private readonly parts: TrainingParts;

  /** A new run refuses an `output` that holds a run unless `overwrite`; `resume` continues it. */
  constructor(
    private readonly output: string,
    private readonly comm: Communicator,
    run: RunParts,
    private readonly scaler: LossScaler | null,
    { resume = false, overwrite = false } = {},
  ) {
    this.dir = path.join(output, 'checkpoint');
    const head = comm.world > 1 ? `head.rank${comm.rank}` : 'head';
    this.parts =
      comm.rank === 0
        ? { modules: { backbone: run.backbone, [head]: run.head }, optimizers: { backbone: run.backboneOptimizer, head: run.headOptimizer } }
        : { modules: { [head]: run.head }, optimizers: { head: run.headOptimizer } };
    if (resume && overwrite) throw new Error(`--resume continues the run in ${output} and --overwrite starts it over: give one of them`);
    if (!resume) claimOutput(output, this.dir, comm, overwrite);
  }

  /** Restores this rank's parts and the scaler; returns the step and micro-batch to continue
   *  from, and this rank's corrupt samples skipped in that epoch before it. Only rank 0 reads
   *  the backbone and its momentum: broadcast them after. */
  resume(): { step: number; batches: number; skipped: number } {
    if (checkpointCounters(this.dir) === null) throw new Error(`--resume: no checkpoint in ${this.dir}`);
    const c = loadTrainingState(this.dir, this.parts, this.comm);
    const refuse = (k: string, want: string): never => {
      const v = c[k];
      throw new Error(`${path.join(this.dir, 'state.json')}: counters.${k} must be ${want}, got ${typeof v === 'number' ? v : JSON.stringify(v)}`);
    };
    const count = (k: string): number => (isCount(c[k]) ? c[k] : refuse(k, 'an integer ≥ 0'));
    const batches = count('batches');
    if (this.scaler !== null && c.lossScale !== undefined) {
      // The scale lives in an f32: 1e39 would be infinite there, 1e-46 zero.
      const scale = c.lossScale;
      if (typeof scale !== 'number' || !(Math.fround(scale) > 0 && Number.isFinite(Math.fround(scale)))) refuse('lossScale', 'a number > 0, finite in f32');
      this.scaler.restore(scale as number, count('scalerGoodSteps'), count('overflowSteps'));
    }
    // What an interrupted write of the run's own files left (the final weights, metrics.jsonl).
    if (this.comm.rank === 0) trainerFiles(this.output, RUN_NAMES).filter((f) => TEMP.test(path.basename(f))).forEach((f) => fs.rmSync(f, { force: true }));
    this.lastGood = c.step;
    return { step: c.step, batches, skipped: (c.skipped as number[] | undefined)?.[this.comm.rank] ?? 0 };
  }

  /** Every rank saves at `step`, after `batches` micro-batches in `epoch` and `skipped`
   *  corrupt samples in it (each rank's own, kept per rank); a NaN or infinite tensor anywhere
   *  stops the run (NonFiniteLoss) with no checkpoint written at `step`. */
  save(step: number, epoch: number, batches: number, skipped = 0): void {
    const s = this.scaler;
    const scaling: Record<string, number> = s === null ? {} : { lossScale: s.scale, scalerGoodSteps: s.goodSteps, overflowSteps: s.overflowSteps };
    const perRank = [...this.comm.allGather(new Float32Array([skipped]))];
    try {
      saveTrainingState(this.dir, this.parts, { step, epoch, batches, skipped: perRank, ...scaling }, this.comm);
    } catch (e) {
      if (e instanceof NonFiniteTensor) throw new NonFiniteLoss(`step ${step}: no checkpoint written: ${e.message}; ${this.resumeFrom()}`);
      throw e;
    }
    this.lastGood = step;
  }

  /** Where a run stopped now could continue from. */
  resumeFrom(): string {
    return this.lastGood === null ? 'no checkpoint was written yet' : `the last good checkpoint is ${this.dir} (step ${this.lastGood})`;
  }
}
