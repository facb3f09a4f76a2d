import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { COSFACE, createModel, keep, loadTrainingState, manualSeed, MarginSoftmax, randn, saveTrainingState, SGD, tidy, Tensor } from '../ts';

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
