import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  COSFACE, Communicator, createModel, full, LossScaler, MarginSoftmax, NonFiniteLoss, openTrainingData, resolveConfig, saveCheckpoint, SGD, Tensor, tidy, train, TrainConfig, verify, worldFromEnv, writeSafetensors,
  writeSyntheticDataset, writeTeacherEmbeddings,
} from '../ts';
import { native } from '../ts/native';
import { NonFiniteTensor } from '../ts/models/weights';
import { RunCheckpoints } from '../ts/train/training-state';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-train-'));
const data = writeSyntheticDataset(path.join(root, 'data'), { identities: 10, perIdentity: 8, heldOut: 6, pairs: 40, seed: 3, quality: 90 });
const base = (name: string, extra: Partial<TrainConfig> = {}): TrainConfig => ({
  network: 'tiny',
  data: data.rec,
  output: path.join(root, name),
  steps: 6,
  batchSize: 8,
  warmupSteps: 1,
  logEvery: 1,
  checkpointEvery: 0,
  loaderThreads: 1,
  ...extra,
});
const metrics = (dir: string) =>
  fs
    .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; loss?: number; kd?: number; lambda?: number; verification?: unknown[] });

test('the config is checked field by field, naming each problem', (t) => {
  const e = t.throws(() => resolveConfig({ network: 'r9', data: 'x.rec', batchSize: -1, lr: 'fast', bogus: 1, kd: {} }, 'config c.json'));
  t.regex(e.message, /^config c\.json:/);
  t.regex(e.message, /unknown field 'bogus'/);
  t.regex(e.message, /network must be a model name \(.*known models are r18, /);
  t.regex(t.throws(() => resolveConfig({ ...base('x'), network: 'R240' })).message, /network must be a model name \(did you mean resnet240\? /);
  t.regex(e.message, /batchSize must be an integer ≥ 1, got -1/);
  t.regex(e.message, /lr must be a number in \(0, 10\], got "fast"/);
  t.regex(e.message, /output is required/);
  t.regex(e.message, /give exactly one of epochs and steps/);
  t.regex(e.message, /kd needs a teacher/);
  const e2 = t.throws(() => resolveConfig({ ...base('x'), teacher: { network: 'tiny' }, kd: { lambda: { kind: 'linear', from: 0 } } }));
  t.regex(e2.message, /teacher must be \{ network: NAME, weights: FILE, embeddingSize\? \}/);
  t.regex(e2.message, /lambda of kind linear with from, to, steps \(missing to, steps\)/);
  const c = resolveConfig(base('x'));
  t.deepEqual(c.margin, { s: 64, mArc: 0, mCos: 0.4 }, 'CosFace s 64 m 0.4 by default');
  t.is(c.clipGradNorm, 5);
});

test('an interrupted run resumes exactly: the next steps lose what an uninterrupted run loses', async (t) => {
  const cfg = resolveConfig(base('whole', { verification: [data.bin], verifyEvery: 3 }));
  const whole = await train(cfg, { quiet: true });
  t.is(whole.status, 'done');
  t.is(whole.verification[0].pairs, 40);
  const want = metrics(cfg.output).filter((m) => m.loss !== undefined);
  t.deepEqual(want.map((m) => m.step), [1, 2, 3, 4, 5, 6]);
  t.is(metrics(cfg.output).filter((m) => m.verification !== undefined).length, 2, 'verified at step 3 and at the end');

  const cut = resolveConfig(base('cut'));
  // A Ctrl-C during step 3 is seen at its end: a checkpoint at step 3, then a clean stop.
  const first = await train(cut, { quiet: true, onStep: (s) => s === 2 && process.emit('SIGINT') });
  t.is(first.status, 'interrupted');
  t.is(first.step, 3);
  first.model.dispose();
  // Rows a crash lost with its steps (and a torn last line) are not kept to be written twice.
  fs.appendFileSync(path.join(cut.output, 'metrics.jsonl'), '{"step":4,"loss":9}\n{"step":5,"loss":9}\n{"step":');
  const stale = path.join(cut.output, '.model.safetensors.4242.tmp'); // an interrupted final write's
  fs.writeFileSync(stale, 'x');
  const rest = await train(cut, { quiet: true, resume: true });
  t.is(rest.status, 'done');
  const got = metrics(cut.output).filter((m) => m.loss !== undefined);
  t.deepEqual(got.map((m) => m.step), [1, 2, 3, 4, 5, 6]);
  got.forEach((m, i) => t.is(m.loss, want[i].loss, `step ${m.step}: identical loss`));
  t.deepEqual([...rest.model.parameters()[0].toFloat32Array()], [...whole.model.parameters()[0].toFloat32Array()], 'identical weights');
  t.true(fs.existsSync(path.join(cut.output, 'model.safetensors')));
  t.false(fs.existsSync(stale));
  whole.model.dispose();
  rest.model.dispose();
  await t.throwsAsync(train(resolveConfig(base('never')), { resume: true }), { message: /--resume: no checkpoint in .*never.checkpoint/ });
});

test('activation checkpointing in the trainer changes memory, not the losses', async (t) => {
  const losses = async (name: string, checkpointing: boolean) => {
    const r = await train(resolveConfig(base(name, { steps: 2, checkpointing })), { quiet: true });
    r.model.dispose();
    return metrics(path.join(root, name)).map((m) => m.loss);
  };
  t.deepEqual(await losses('ckpt', true), await losses('no-ckpt', false));
  t.throws(() => resolveConfig(base('x', { checkpointing: [true] as unknown as boolean[] })), { message: /checkpointing must be true, false or four booleans/ });
});

test('gradient accumulation: several micro-batches per optimiser step, counted in the checkpoint', async (t) => {
  const cfg = resolveConfig(base('accum', { steps: 3, batchSize: 4, gradAccumulation: 2 }));
  const r = await train(cfg, { quiet: true });
  t.deepEqual(metrics(cfg.output).map((m) => m.step), [1, 2, 3]);
  const state = JSON.parse(fs.readFileSync(path.join(cfg.output, 'checkpoint', 'state.json'), 'utf8')) as { counters: { step: number; batches: number } };
  t.deepEqual([state.counters.step, state.counters.batches], [3, 6]);
  r.model.dispose();
});

for (const [precision, perStep] of [['f32', 3], ['f16', 4]] as const) {
  test.serial(`a step reads nothing back: its numbers are read at the log point (${precision}, clipping on)`, async (t) => {
    // Every read of a tensor's values during the run (serial: no other test reads meanwhile),
    // outside the log point's read-back and the final checkpoint (with f16's scaler state)
    // and weights (and the classifier's fusedLoss backward, which reads its upstream factor
    // on the CPU only: free there; on a GPU it is multiplied in on the device).
    const proto = Tensor.prototype as unknown as { toFloat32Array(): Float32Array };
    const original = proto.toFloat32Array;
    const strays: string[] = [];
    let reads = 0;
    proto.toFloat32Array = function (this: Tensor) {
      const stack = new Error().stack ?? '';
      if (/StepLog\.read|flush/.test(stack)) reads++;
      else if (!/at save |saveTrainingState|saveCheckpoint|writeSafetensors|fusedLoss/.test(stack)) strays.push(stack.split('\n').slice(1, 4).join(' | '));
      return original.call(this);
    };
    const name = `no-reads-${precision}`;
    try {
      const r = await train(resolveConfig(base(name, { steps: 4, logEvery: 4, clipGradNorm: 0.5, precision, lossScale: 1024 })), { quiet: true });
      r.model.dispose();
    } finally {
      proto.toFloat32Array = original;
    }
    t.deepEqual(strays, []);
    // Each step's loss, gate and norm (and f16's scale), read at step 4; f16's log line also
    // reads the current scale and the overflow count.
    t.is(reads, 4 * perStep + (precision === 'f16' ? 2 : 0));
    t.deepEqual(metrics(path.join(root, name)).map((m) => m.step), [4]);
  });
}

test('distillation from precomputed teacher embeddings logs λ and both terms; a NaN stops with the step and the last checkpoint', async (t) => {
  const teacherModel = createModel('tiny');
  const weights = path.join(root, 'teacher.safetensors');
  saveCheckpoint(teacherModel, weights);
  const emb = path.join(root, 'teacher-emb.safetensors');
  const ds = openTrainingData(data.rec);
  writeTeacherEmbeddings(teacherModel, ds, emb);
  const cfg = resolveConfig(base('kd', { teacher: { embeddings: emb }, kd: { lambda: { kind: 'linear', from: 0, to: 1, steps: 5 } } }));
  const r = await train(cfg, { quiet: true });
  const m = metrics(cfg.output).filter((x) => x.kd !== undefined);
  t.deepEqual(m.map((x) => x.lambda), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  t.true(m.every((x) => x.kd! > 0 && x.kd! < 4), 'the l2 form lies in (0, 4)');
  r.model.dispose();
  // The same, with the teacher network run on the student's batches.
  const live = await train(resolveConfig(base('kd-live', { steps: 2, teacher: { network: 'tiny', weights } })), { quiet: true });
  t.true(metrics(path.join(root, 'kd-live')).some((x) => x.kd !== undefined && x.kd > 0));
  live.model.dispose();

  // Poisoned embeddings for the samples of step 3 only (batch 2 of epoch 0): the checkpoint
  // at step 2 is good, step 3 is skipped on the device and reported at the next read-back.
  const bad = path.join(root, 'bad-emb.safetensors');
  const values = new Float32Array(ds.length * 64).fill(0.1);
  let k = 0;
  for await (const b of ds.loader({ batch: 8, seed: 2021, threads: 1 }).epoch(0)) {
    if (k++ === 2) b.indices.forEach((i) => values.fill(Number.NaN, i * 64, (i + 1) * 64));
    b.images.dispose();
  }
  writeSafetensors(bad, new Map([['embeddings', { dtype: 'F32', shape: [ds.length, 64], data: new Uint8Array(values.buffer) }]]));
  const nan = resolveConfig(base('nan', { teacher: { embeddings: bad }, checkpointEvery: 2 }));
  const e = await t.throwsAsync(train(nan, { quiet: true }), { instanceOf: NonFiniteLoss });
  t.regex(e!.message, /^step 3: the loss is NaN and the gradient norm NaN; the step was not applied; the last good checkpoint is .*nan.checkpoint \(step 2\)/);
  await t.throwsAsync(train(resolveConfig(base('wrong', { teacher: { embeddings: path.join(root, 'teacher.safetensors') } })), { quiet: true }), {
    message: /teacher\.safetensors: not a valid safetensors file: expected an F32 \[rows, dim\] tensor 'embeddings', found none/,
  });
});

test('a new run into a folder that holds a run is refused, naming it and the ways out; --overwrite removes only the run\'s own files', async (t) => {
  const cfg = resolveConfig(base('taken', { steps: 2, checkpointEvery: 1 }));
  (await train(cfg, { quiet: true })).model.dispose();
  fs.writeFileSync(path.join(cfg.output, 'notes.txt'), 'mine');
  const before = fs.readdirSync(path.join(cfg.output, 'checkpoint')).sort();
  const rows = fs.readFileSync(path.join(cfg.output, 'metrics.jsonl'), 'utf8');
  await t.throwsAsync(train(cfg, { quiet: true }), {
    message: `${cfg.output} holds a run (config.json, metrics.jsonl, model.safetensors, checkpoint/backbone-00000002.safetensors, …): continue it with --resume, start it over there with --overwrite (removes its checkpoints, metrics.jsonl, config.json, init.json and model.safetensors), or give another output folder`,
  });
  t.deepEqual(fs.readdirSync(path.join(cfg.output, 'checkpoint')).sort(), before, 'the checkpoints are untouched');
  t.is(fs.readFileSync(path.join(cfg.output, 'metrics.jsonl'), 'utf8'), rows, 'nothing appended');
  await t.throwsAsync(train(cfg, { quiet: true, resume: true, overwrite: true }), { message: /--resume continues the run in .* and --overwrite starts it over: give one of them/ });
  // The command line: the flag reaches the trainer (the CLI runs from dist: npm run build:ts).
  const config = path.join(root, 'taken.json');
  fs.writeFileSync(config, JSON.stringify(base('taken', { steps: 1, warmupSteps: 0 })));
  const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(__dirname, '..', 'dist', 'cli', 'main.js'), 'train', '--config', config, '--quiet', ...args], { encoding: 'utf8', timeout: 120_000 });
  const refused = cli();
  t.is(refused.status, 1);
  t.regex(refused.stderr, /holds a run .*: continue it with --resume, start it over there with --overwrite/);
  const over = cli('--overwrite');
  t.is(over.status, 0, over.stderr);
  t.deepEqual(metrics(cfg.output).map((m) => m.step), [1], 'only the new run\'s rows');
  t.deepEqual(fs.readdirSync(path.join(cfg.output, 'checkpoint')).sort(), ['backbone-00000001.safetensors', 'head-00000001.safetensors', 'optimizer-00000001.safetensors', 'state.json']);
  t.is(fs.readFileSync(path.join(cfg.output, 'notes.txt'), 'utf8'), 'mine', 'a file the trainer did not write stays');
});

test('a checkpoint with a NaN or infinite tensor is not written; the run stops naming it and the last checkpoint verified finite', (t) => {
  const output = path.join(root, 'diverged');
  const comm = Communicator.connect(worldFromEnv({}));
  const model = createModel('tiny');
  const head = new MarginSoftmax(64, 5, COSFACE);
  const [b, h] = [new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 }), new SGD(head.parameters(), { lr: 0.1, momentum: 0.9 })];
  const checkpoints = new RunCheckpoints(output, comm, { backbone: model, head, backboneOptimizer: b, headOptimizer: h }, null);
  checkpoints.save(8, 0, 8);
  // Running statistics diverge while the loss and gradients stay finite.
  tidy(() => native.copyInto(model.bn1.runningVar.handle('test'), full([8], Infinity).handle('test')));
  const e = t.throws(() => checkpoints.save(9, 0, 9), { instanceOf: NonFiniteLoss });
  t.is(e!.message, `step 9: no checkpoint written: module 'backbone': 'bn1.running_var' holds Infinity (value 0 of 8); the last good checkpoint is ${path.join(output, 'checkpoint')} (step 8)`);
  t.deepEqual(fs.readdirSync(path.join(output, 'checkpoint')).sort(), ['backbone-00000008.safetensors', 'head-00000008.safetensors', 'optimizer-00000008.safetensors', 'state.json']);
  // Such weights do not score a plausible 50% either (in training: NonFiniteLoss, with the last good checkpoint).
  tidy(() => native.copyInto(model.bn1.runningMean.handle('test'), full([8], NaN).handle('test')));
  t.throws(() => verify(model, data.bin), { instanceOf: NonFiniteTensor, message: /^verify: the model's embedding of image 0 holds NaN: the weights \(or their BatchNorm statistics\) are not usable$/ });
  [model, head, b, h].forEach((x) => x.dispose());
});

test("a resumed loss scale and its counters are checked: one f16 cannot use is refused, naming state.json and the field", (t) => {
  const output = path.join(root, 'scaler');
  const comm = Communicator.connect(worldFromEnv({}));
  const model = createModel('tiny');
  const head = new MarginSoftmax(64, 5, COSFACE);
  const run = { backbone: model, head, backboneOptimizer: new SGD(model.parameters(), { lr: 0.1 }), headOptimizer: new SGD(head.parameters(), { lr: 0.1 }) };
  const scaler = new LossScaler({ initScale: 1024 });
  new RunCheckpoints(output, comm, run, scaler).save(3, 0, 3);
  const state = path.join(output, 'checkpoint', 'state.json');
  const saved = JSON.parse(fs.readFileSync(state, 'utf8')) as { counters: Record<string, unknown> };
  const bad: [string, unknown, string, string][] = [
    ['lossScale', -1, 'a number > 0, finite in f32', '-1'],
    ['lossScale', 1e39, 'a number > 0, finite in f32', '1e+39'],
    ['lossScale', '1024', 'a number > 0, finite in f32', '"1024"'],
    ['scalerGoodSteps', 2.5, 'an integer ≥ 0', '2.5'],
    ['overflowSteps', -1, 'an integer ≥ 0', '-1'],
    ['overflowSteps', null, 'an integer ≥ 0', 'null'],
  ];
  for (const [field, value, want, shown] of bad) {
    fs.writeFileSync(state, JSON.stringify({ ...saved, counters: { ...saved.counters, [field]: value } }));
    t.throws(() => new RunCheckpoints(output, comm, run, new LossScaler(), { resume: true }).resume(), { message: `${state}: counters.${field} must be ${want}, got ${shown}` }, field);
  }
  fs.writeFileSync(state, JSON.stringify(saved));
  const resumed = new LossScaler();
  t.deepEqual(new RunCheckpoints(output, comm, run, resumed, { resume: true }).resume(), { step: 3, batches: 3, skipped: 0 });
  t.is(resumed.scale, 1024);
  [model, head, run.backboneOptimizer, run.headOptimizer, scaler, resumed].forEach((x) => x.dispose());
});
