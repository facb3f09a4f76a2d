// The training configuration: one typed object (like arcface_torch's config files), checked
// field by field with errors that name the field, the file and what was expected. Recipes are
// small .ts/.js/.json files under configs/.

import fs from 'node:fs';
import path from 'node:path';
import { knownModels, MODELS } from '../models/iresnet';
import { gpuProblem } from '../system';
import type { Margin } from '../tensor/ops';
import { ARCFACE, COSFACE } from '../losses/margin';
import { DEFAULT_CHUNK } from '../losses/sharded';
import { DEFAULT_LOSS_SCALE } from '../optim/loss-scaler';
import { MASK_DEFAULTS, MAX_CORRUPT_SHARE } from '../data/loader';
import { isOnnxFile } from '../io/weights-file';
import { photometricProblem, type PhotometricOptions } from '../data/photometric';
import type { KdForm, LambdaSchedule } from '../losses/distill';

/** A network with its weights, embeddings precomputed by `maskfr embed`, or an IResNet ONNX
 *  file (`'model.onnx'`: insightface's model zoo, torch2onnx exports) bringing both. */
export type Teacher = { network: string; weights: string; embeddingSize?: number } | { embeddings: string } | string;

/** A pretrained start (fine-tuning): the backbone's weights loaded by name before the first
 *  step (not on --resume, whose checkpoint has them); the classifier is always new. */
export interface InitFrom {
  /** An arcface_torch `.pt`/`.pth` (backbone.pth, model.pt), a safetensors, or an IResNet
   *  ONNX file that keeps its BatchNorms. */
  weights: string;
  /** Freeze the stem and the first N stages (0: the stem only, up to 4): no updates, their
   *  BatchNorms in evaluation mode. Default: nothing frozen. */
  freeze?: number;
  /** The backbone's learning rate, as a share of `lr` (the classifier takes `lr`). */
  backboneLrScale?: number;
  /** Start although names or shapes differ: those tensors keep their fresh initialisation. */
  allowMismatch?: boolean;
}

export interface TrainConfig {
  /** A name of the IResNet table (`maskfr models`). */
  network: string;
  /** The embedding size, when not the table's (a student matching its teacher's). */
  embeddingSize?: number;
  /** Training data: a `.rec` (with its `.idx`) or an image folder. */
  data: string;
  /** Where checkpoints, metrics.jsonl and the final weights go. */
  output: string;
  /** Classes of the classifier (default: the dataset's identities). */
  numClasses?: number;
  margin?: 'cosface' | 'arcface' | Margin;
  /** Negative-class sampling rate ρ of the sharded classifier. */
  sampleRate?: number;
  /** Classes scored at a time in the classifier (0: all at once). */
  chunk?: number;
  /** Images per rank per micro-batch. */
  batchSize?: number;
  /** Learning rate of the whole (global, accumulated) batch. */
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  /** Length of training: epochs, or optimiser steps (one of them). */
  epochs?: number;
  steps?: number;
  /** Linear warmup, in steps or epochs (one of them; default none). */
  warmupSteps?: number;
  warmupEpochs?: number;
  /** Micro-batches per optimiser step. */
  gradAccumulation?: number;
  /** Activation checkpointing: every stage (true), none (false), or per stage. */
  checkpointing?: boolean | boolean[];
  /** Gradient-norm clip on the backbone (0: none). */
  clipGradNorm?: number;
  /** Share of samples masked by the synthesizers, and the template synthesizer's part. */
  maskProbability?: number;
  maskTemplateShare?: number;
  /** Photometric augmentation after the masks: `{ brightness, contrast, saturation, blur,
   *  jpeg, erasing }`, each `{ probability, … }` with its range; what is left out takes
   *  PHOTOMETRIC_DEFAULTS' values (`{}`: insightface's recipe). Absent: none. */
  photometric?: PhotometricOptions;
  /** `.bin` verification sets, checked every `verifyEvery` steps and at the end. */
  verification?: string[];
  verifyEvery?: number;
  /** A checkpoint every N steps (0: only at the end and on Ctrl-C). */
  checkpointEvery?: number;
  /** Metrics printed and written to metrics.jsonl every N steps. */
  logEvery?: number;
  seed?: number;
  loaderThreads?: number;
  /** Skip corrupt images (each batch stays full: the next readable sample takes the place),
   *  counted per epoch in the progress line and metrics.jsonl. */
  skipCorrupt?: boolean;
  /** With skipCorrupt: the share of an epoch's samples (on each rank) that may be corrupt;
   *  one more stops the run with an error naming the data, the count and the share. */
  maxCorruptShare?: number;
  /** Distillation: a teacher network with weights, its embeddings precomputed by `maskfr
   *  embed`, or an IResNet ONNX file. */
  teacher?: Teacher;
  kd?: { form?: KdForm; lambda?: LambdaSchedule };
  /** Start from pretrained weights (see InitFrom). */
  init?: InitFrom;
  /** How long a rank waits for the others before failing. */
  commTimeoutSeconds?: number;
  /** Gradient buckets (MiB) all-reduced during the backward on several ranks. */
  bucketMiB?: number;
  /** 'f16' sends the buckets as f16: half the bytes, gradients rounded to f16. */
  bucketCompression?: 'none' | 'f16';
  /** Where the backbone trains: 'cpu', 'cuda:N', 'cuda' (each rank's own GPU: cuda:LOCAL_RANK),
   *  or 'auto' ('cuda' when a GPU and the CUDA libraries are there, else the CPU). Each rank's
   *  classifier shard follows its backbone onto its GPU; on several ranks the gradients and
   *  the classifier's collectives go through NCCL. */
  device?: string;
  /** Backbone products in f16 (with dynamic loss scaling) or bf16; master weights, the
   *  classifier and the loss stay f32 (as arcface_torch's fp16 option). */
  precision?: 'f32' | 'f16' | 'bf16';
  /** f16's initial loss scale (GradScaler's 2¹⁶ by default; it backs off on overflow, grows
   *  after 100 clean steps). */
  lossScale?: number;
}

type Defaulted = 'margin' | 'sampleRate' | 'chunk' | 'batchSize' | 'lr' | 'momentum' | 'weightDecay' | 'gradAccumulation' | 'clipGradNorm' | 'maskProbability' | 'maskTemplateShare' | 'verification' | 'verifyEvery' | 'checkpointEvery' | 'logEvery' | 'seed' | 'skipCorrupt' | 'maxCorruptShare' | 'commTimeoutSeconds' | 'bucketMiB' | 'bucketCompression' | 'device' | 'precision' | 'lossScale';
export type ResolvedConfig = Omit<TrainConfig, Defaulted | 'margin' | 'kd'> &
  Required<Pick<TrainConfig, Exclude<Defaulted, 'margin'>>> & { margin: Margin; kd: { form: KdForm; lambda: LambdaSchedule } };

export const CONFIG_DEFAULTS = {
  margin: 'cosface',
  sampleRate: 1,
  chunk: DEFAULT_CHUNK,
  batchSize: 128,
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 5e-4,
  gradAccumulation: 1,
  clipGradNorm: 5,
  ...MASK_DEFAULTS,
  verification: [],
  verifyEvery: 2000,
  checkpointEvery: 2000,
  logEvery: 50,
  seed: 2021,
  skipCorrupt: false,
  maxCorruptShare: MAX_CORRUPT_SHARE,
  commTimeoutSeconds: 300,
  bucketMiB: 25,
  bucketCompression: 'none',
  device: 'cpu',
  precision: 'f32',
  lossScale: DEFAULT_LOSS_SCALE,
} as const satisfies Partial<TrainConfig>;

/** The identity function, for typed recipes: `export default defineConfig({ … })`. */
export function defineConfig(c: TrainConfig): TrainConfig {
  return c;
}

type Check = (v: unknown) => string | null;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const int = (min: number): Check => (v) => (Number.isInteger(v) && (v as number) >= min ? null : `an integer ≥ ${min}`);
const real = (lo: number, hi: number, openLo = false): Check => (v) =>
  isNum(v) && (openLo ? v > lo : v >= lo) && v <= hi ? null : `a number in ${openLo ? '(' : '['}${lo}, ${hi}]`;
const str: Check = (v) => (typeof v === 'string' && v.length > 0 ? null : 'a non-empty string');
const bool: Check = (v) => (typeof v === 'boolean' ? null : 'true or false');
const network: Check = (v) => (typeof v === 'string' && Object.hasOwn(MODELS, v) ? null : `a model name (${knownModels(String(v))})`);
const margin: Check = (v) =>
  v === 'cosface' || v === 'arcface' || (typeof v === 'object' && v !== null && ['s', 'mArc', 'mCos'].every((k) => isNum((v as Record<string, unknown>)[k])))
    ? null
    : "'cosface', 'arcface' or { s, mArc, mCos }";
const strings: Check = (v) => (Array.isArray(v) && v.every((s) => str(s) === null) ? null : 'a list of paths');
const teacher: Check = (v) => {
  const o = v as Record<string, unknown>;
  if (typeof v === 'string') return isOnnxFile(v) ? null : "an ONNX file's path (M.onnx), { network, weights } or { embeddings }";
  if (typeof v !== 'object' || v === null) return "{ network, weights }, { embeddings } or an ONNX file's path";
  if ('embeddings' in o) return str(o.embeddings) === null && Object.keys(o).length === 1 ? null : '{ embeddings: FILE } alone';
  const sizeOk = o.embeddingSize === undefined || int(1)(o.embeddingSize) === null;
  const known = Object.keys(o).every((k) => ['network', 'weights', 'embeddingSize'].includes(k));
  return network(o.network) === null && str(o.weights) === null && sizeOk && known ? null : '{ network: NAME, weights: FILE, embeddingSize? } with a network from the table';
};
const init: Check = (v) => {
  const o = v as Record<string, unknown>;
  const want = '{ weights: FILE, freeze?: 0–4, backboneLrScale?: (0, 1], allowMismatch?: boolean }';
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return want;
  const wrong = [
    str(o.weights) !== null && 'weights a path (.pt, .pth, .safetensors or .onnx)',
    o.freeze !== undefined && !(Number.isInteger(o.freeze) && (o.freeze as number) >= 0 && (o.freeze as number) <= 4) && 'freeze an integer in 0–4 (the stem and that many stages)',
    o.backboneLrScale !== undefined && real(0, 1, true)(o.backboneLrScale) !== null && 'backboneLrScale a number in (0, 1]',
    o.allowMismatch !== undefined && bool(o.allowMismatch) !== null && 'allowMismatch true or false',
    ...Object.keys(o).filter((k) => !['weights', 'freeze', 'backboneLrScale', 'allowMismatch'].includes(k)).map((k) => `no field '${k}'`),
  ].filter(Boolean);
  return wrong.length === 0 ? null : `${want}, with ${wrong.join(', ')}`;
};
const FORMS = ['l2', 'one-minus-cos', 'squared'];
const LAMBDAS: Record<string, string[]> = { constant: ['value'], linear: ['from', 'to', 'steps'], cosine: ['from', 'to', 'steps'], step: ['values', 'milestones'] };
const kd: Check = (v) => {
  const o = v as { form?: unknown; lambda?: Record<string, unknown> };
  if (typeof v !== 'object' || v === null) return '{ form?, lambda? }';
  if (o.form !== undefined && !FORMS.includes(o.form as string)) return `form one of ${FORMS.join(', ')}`;
  const l = o.lambda;
  if (l === undefined) return null;
  const fields = LAMBDAS[l?.kind as string];
  if (fields === undefined) return `lambda.kind one of ${Object.keys(LAMBDAS).join(', ')}`;
  const missing = fields.filter((f) => l[f] === undefined);
  return missing.length === 0 ? null : `lambda of kind ${String(l.kind)} with ${fields.join(', ')} (missing ${missing.join(', ')})`;
};

const FIELDS: Record<keyof TrainConfig, Check> = {
  network,
  embeddingSize: int(1),
  data: str,
  output: str,
  numClasses: int(1),
  margin,
  sampleRate: real(0, 1, true),
  chunk: int(0),
  batchSize: int(1),
  lr: real(0, 10, true),
  momentum: real(0, 1),
  weightDecay: real(0, 1),
  epochs: real(0, 1e6, true),
  steps: int(1),
  warmupSteps: int(0),
  warmupEpochs: real(0, 1e6),
  gradAccumulation: int(1),
  checkpointing: (v) => (typeof v === 'boolean' || (Array.isArray(v) && v.length === 4 && v.every((x) => typeof x === 'boolean')) ? null : 'true, false or four booleans (one per stage)'),
  clipGradNorm: real(0, 1e9),
  maskProbability: real(0, 1),
  maskTemplateShare: real(0, 1),
  photometric: (v) => {
    const problem = photometricProblem(v);
    return problem === null ? null : `a valid section (${problem})`;
  },
  verification: strings,
  verifyEvery: int(0),
  checkpointEvery: int(0),
  logEvery: int(1),
  seed: int(0),
  loaderThreads: int(1),
  skipCorrupt: bool,
  maxCorruptShare: real(0, 1),
  teacher,
  kd,
  init,
  commTimeoutSeconds: real(0, 1e6, true),
  bucketMiB: real(0, 1e6, true),
  bucketCompression: (v) => (v === 'none' || v === 'f16' ? null : "'none' or 'f16'"),
  device: (v) => (typeof v === 'string' && /^(cpu|auto|cuda|cuda:\d+)$/.test(v) ? null : "'cpu', 'cuda:N', 'cuda' or 'auto'"),
  precision: (v) => (v === 'f32' || v === 'f16' || v === 'bf16' ? null : "'f32', 'f16' or 'bf16'"),
  lossScale: real(0, 2 ** 24, true),
};

/** Checks every field of `raw` (from `source`, for messages) and fills in the defaults. */
export function resolveConfig(raw: unknown, source = 'config'): ResolvedConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${source}: a config is an object of fields, got ${JSON.stringify(raw)}`);
  const o = raw as Record<string, unknown>;
  const problems: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    const check = FIELDS[k as keyof TrainConfig];
    if (check === undefined) problems.push(`unknown field '${k}' (known: ${Object.keys(FIELDS).join(', ')})`);
    else if (v !== undefined) {
      const want = check(v);
      if (want !== null) problems.push(`${k} must be ${want}, got ${JSON.stringify(v)}`);
    }
  }
  for (const k of ['network', 'data', 'output']) if (o[k] === undefined) problems.push(`${k} is required`);
  if ((o.epochs === undefined) === (o.steps === undefined)) problems.push('give exactly one of epochs and steps');
  if (o.warmupSteps !== undefined && o.warmupEpochs !== undefined) problems.push('give at most one of warmupSteps and warmupEpochs');
  if (o.kd !== undefined && o.teacher === undefined) problems.push('kd needs a teacher');
  if (problems.length > 0) throw new Error(`${source}:\n  ${problems.join('\n  ')}`);
  const c = { ...CONFIG_DEFAULTS, ...o } as TrainConfig & typeof CONFIG_DEFAULTS;
  const m = c.margin;
  return {
    ...c,
    verification: [...c.verification],
    margin: m === 'cosface' ? COSFACE : m === 'arcface' ? ARCFACE : m,
    kd: { form: c.kd?.form ?? 'l2', lambda: c.kd?.lambda ?? { kind: 'constant', value: 0.5 } },
    device: (c.device as string) === 'auto' ? (gpuProblem() === null ? 'cuda' : 'cpu') : c.device,
  };
}

/** Reads a config file: `.json`, `.js`/`.cjs` (module.exports or a default export), or
 *  `.ts` when tsx or ts-node is installed; `overrides` replace its fields before the checks. */
export function loadConfig(file: string, overrides: Record<string, unknown> = {}): ResolvedConfig {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) throw new Error(`config ${file}: no such file`);
  if (!fs.statSync(abs).isFile()) throw new Error(`config ${file}: a folder, expected a .ts, .js or .json recipe file`);
  let raw: unknown;
  if (abs.endsWith('.json')) {
    try {
      raw = JSON.parse(fs.readFileSync(abs, 'utf8'));
    } catch (e) {
      throw new Error(`config ${file}: not valid JSON (${(e as Error).message})`);
    }
  } else {
    if (/\.[mc]?ts$/.test(abs)) registerTypeScript(file);
    let mod: { default?: unknown };
    try {
      mod = require(abs) as { default?: unknown };
    } catch (e) {
      // A recipe is code: its own error, without the file it came from, would leave the user guessing.
      throw new Error(`config ${file}: loading it failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    raw = mod.default ?? mod;
  }
  const changed = Object.keys(overrides).length > 0;
  return resolveConfig(changed ? { ...(raw as object), ...overrides } : raw, `config ${file}${changed ? ' with --set' : ''}`);
}

/** Lets `require` read TypeScript recipes, through whichever of tsx and ts-node is present. */
function registerTypeScript(file: string): void {
  if (require.extensions['.ts'] !== undefined) return; // already running under tsx / ts-node
  for (const [pkg, register] of [
    ['tsx/cjs/api', (m: { register: () => void }) => m.register()],
    ['ts-node', (m: { register: (o: object) => void }) => m.register({ transpileOnly: true })],
  ] as const) {
    try {
      register(require(pkg));
      return;
    } catch {
      // try the next one
    }
  }
  throw new Error(`config ${file}: a TypeScript config needs tsx or ts-node installed (or write it as .json/.js)`);
}
