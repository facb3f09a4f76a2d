import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkpointCounters, COSFACE, createModel, full, keep, loadTrainingState, manualSeed, MarginSoftmax, randn, readSafetensors, saveTrainingState, SGD, tidy, Tensor, writeSafetensors } from '../ts';
import { native } from '../ts/native';
import { NonFiniteTensor } from '../ts/models/weights';

function setup() {
  manualSeed(11);
  const model = createModel('tiny');
  const head = new MarginSoftmax(64, 5, COSFACE);
  const opt = new SGD([...model.parameters(), ...head.parameters()], { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
  return { model, head, opt };
}

const batches = tidy(() => Array.from({ length: 4 }, (_, i) => ({ x: randn([4, 3, 112, 112], { seed: 100 + i }), y: [i % 5, (i + 1) % 5, (i + 2) % 5, i % 5] })));
batches.forEach((b) => keep(b.x));

function train(s: ReturnType<typeof setup>, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    tidy(() => {
      s.opt.zeroGrad();
      s.head.loss(s.model.forward(batches[i].x), batches[i].y).backward();
      s.opt.step();
    });
  }
}

const parts = (s: ReturnType<typeof setup>) => ({ modules: { backbone: s.model, head: s.head }, optimizers: { sgd: s.opt } });

const weights = (s: ReturnType<typeof setup>): number[] => s.model.parameters().flatMap((p: Tensor) => [...p.toFloat32Array()]);

test('save at step 2, resume in fresh objects: steps 3–4 give identical weights', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-resume-'));
  const a = setup();
  train(a, 0, 2);
  saveTrainingState(dir, parts(a), { step: 2, epoch: 0 });
  train(a, 2, 4);
  const b = setup();
  train(b, 0, 1); // diverge first: resuming must overwrite everything
  const counters = loadTrainingState(dir, parts(b));
  t.deepEqual(counters, { step: 2, epoch: 0 });
  train(b, 2, 4);
  t.deepEqual(weights(b), weights(a));
  t.deepEqual(fs.readdirSync(dir).sort(), ['backbone-00000002.safetensors', 'head-00000002.safetensors', 'optimizer-00000002.safetensors', 'state.json']);
  saveTrainingState(dir, parts(a), { step: 4, epoch: 0 });
  t.false(fs.readdirSync(dir).some((f) => f.includes('00000002')), 'the previous set is removed once the new one is complete');
  t.throws(() => loadTrainingState(dir, { modules: { student: a.model }, optimizers: { sgd: a.opt } }), {
    message: /the checkpoint of step 4 has no student-00000004.safetensors \(it has backbone, head, optimizer\)/,
  });
  t.throws(() => loadTrainingState(path.join(dir, 'nope'), parts(a)), { message: /no training checkpoint/ });
});

const fill = (t: Tensor, v: number) => tidy(() => native.copyInto(t.handle('test'), full([...t.shape], v).handle('test')));

test('names come from the step, never from state.json: a crafted stamp is refused and deletes nothing outside', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-stamp-'));
  const dir = path.join(root, 'run', 'checkpoint');
  const victim = path.join(root, 'victim.safetensors'); // where backbone-<stamp>.safetensors points
  fs.writeFileSync(victim, 'precious');
  const a = setup();
  saveTrainingState(dir, parts(a), { step: 1, epoch: 0 });
  const state = path.join(dir, 'state.json');
  fs.writeFileSync(state, JSON.stringify({ counters: { step: 1, epoch: 0 }, stamp: 'x/../../../victim', world: 1 }));
  t.throws(() => loadTrainingState(dir, parts(a)), { message: `${state}: not a usable training state (stamp "x/../../../victim" is not step 1's 00000001); it is written whole, so it was cut short or changed outside maskfr: restore it, or start the run again with --overwrite or in a new output folder` });
  saveTrainingState(dir, parts(a), { step: 2, epoch: 0 });
  t.is(fs.readFileSync(victim, 'utf8'), 'precious');
  t.deepEqual(fs.readdirSync(dir).sort(), ['backbone-00000002.safetensors', 'head-00000002.safetensors', 'optimizer-00000002.safetensors', 'state.json']);
});

test('a truncated state.json is named, with what to do', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-trunc-'));
  const a = setup();
  saveTrainingState(dir, parts(a), { step: 3, epoch: 0 });
  const state = path.join(dir, 'state.json');
  fs.writeFileSync(state, fs.readFileSync(state, 'utf8').slice(0, 40));
  t.throws(() => loadTrainingState(dir, parts(a)), { message: new RegExp(`^${state.replace(/[.]/g, '\\.')}: not a usable training state \\(Unterminated .*\\); .*restore it, or start the run again with --overwrite or in a new output folder$`) });
});

test('no checkpoint holds a NaN or infinite tensor: the save is refused naming it, and the previous checkpoint stays whole', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-finite-'));
  const a = setup();
  saveTrainingState(dir, parts(a), { step: 8, epoch: 0 });
  const before = fs.readdirSync(dir).sort();
  fill(a.model.bn1.runningVar, Infinity); // BatchNorm statistics: not covered by the loss / gradient check
  t.throws(() => saveTrainingState(dir, parts(a), { step: 9, epoch: 0 }), { instanceOf: NonFiniteTensor, message: "module 'backbone': 'bn1.running_var' holds Infinity (value 0 of 8)" });
  t.deepEqual(fs.readdirSync(dir).sort(), before, 'nothing of step 9 written');
  t.is(checkpointCounters(dir)?.step, 8);
  fill(a.model.bn1.runningVar, 1);
  fill(a.opt.buffers[3], NaN);
  t.throws(() => saveTrainingState(dir, parts(a), { step: 9, epoch: 0 }), { message: "momentum 3 of optimizer 'sgd' holds NaN (value 0 of 8)" });
  t.throws(() => saveTrainingState(dir, parts(setup()), { step: 9, epoch: 0, lossScale: Infinity }), { message: 'counter lossScale is Infinity' });
  // A file that holds one is refused when read back.
  const file = path.join(dir, 'backbone-00000008.safetensors');
  const st = readSafetensors(file);
  st.tensors.set('bn1.running_mean', { dtype: 'F32', shape: [8], data: new Uint8Array(new Float32Array(8).fill(NaN).buffer) });
  writeSafetensors(file, st.tensors, st.metadata);
  const fresh = setup();
  const untouched = fresh.model.namedParameters().map(([k, p]) => [k, p.toFloat32Array()] as const);
  t.throws(() => loadTrainingState(dir, parts(fresh)), { message: `${file}: 'bn1.running_mean' holds NaN (value 0 of 8); these weights are not usable (a diverged run's?)` });
  // Every value is checked before the first copy: the refused load left no weight half-loaded.
  for (const [k, v] of untouched) t.deepEqual(fresh.model.namedParameters().find(([n]) => n === k)![1].toFloat32Array(), v, k);
});

test('a save removes what interrupted saves left (temp files, other steps), known names only', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-stale-'));
  const a = setup();
  saveTrainingState(dir, parts(a), { step: 2, epoch: 0 });
  const left = ['.backbone-00000004.safetensors.4242.tmp', 'head-00000004.safetensors', 'optimizer-00000001.safetensors', '.state.json.4242.tmp'];
  const others = ['notes.txt', 'student-00000001.safetensors', '.notes.txt.4242.tmp'];
  [...left, ...others].forEach((f) => fs.writeFileSync(path.join(dir, f), 'x'));
  saveTrainingState(dir, parts(a), { step: 3, epoch: 0 });
  t.deepEqual(fs.readdirSync(dir).sort(), [...others, 'backbone-00000003.safetensors', 'head-00000003.safetensors', 'optimizer-00000003.safetensors', 'state.json'].sort());
  fs.writeFileSync(path.join(dir, left[0]), 'x');
  loadTrainingState(dir, parts(setup()));
  t.false(fs.existsSync(path.join(dir, left[0])), 'resuming cleans up too');
});
