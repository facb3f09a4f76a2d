import test from 'ava';
import { keep, LossScaler, ops, SGD, tensor } from '../ts';

test('the gate undoes the scale, clips like clip_grad_norm_, and is NaN on overflow', (t) => {
  const s = new LossScaler({ initScale: 8 });
  const gate = (sumsq: number, maxNorm?: number) => {
    const g = s.gate(tensor([sumsq], []), maxNorm);
    const v = g.item();
    g.dispose();
    return v;
  };
  // Scaled gradients of norm 8·5 = 40: unscaled norm 5.
  t.is(gate(1600), 1 / 8);
  t.true(Math.abs(gate(1600, 2) - (1 / 8) * (2 / (5 + 1e-6))) < 1e-7, 'clipped to norm 2');
  t.true(Number.isNaN(gate(Infinity)));
  t.true(Number.isNaN(gate(NaN, 2)));
  t.is(s.scaleLoss(tensor([0.5], [])).item(), 4);
  s.dispose();
});

test('SGD with a gate: the gradient multiplied by it; a NaN gate changes nothing', (t) => {
  const p = keep(tensor([1, 2, 3], [3]));
  p.grad = keep(tensor([8, 16, -24], [3]));
  const opt = new SGD([p], { lr: 0.5, momentum: 0.9 });
  opt.step(keep(tensor([0.25], [])));
  t.deepEqual([...p.toFloat32Array()], [0, 0, 6], 'p − 0.5·0.25·g');
  t.deepEqual([...opt.buffers[0].toFloat32Array()], [2, 4, -6]);
  opt.step(keep(tensor([NaN], [])));
  t.deepEqual([...p.toFloat32Array()], [0, 0, 6], 'skipped');
  t.deepEqual([...opt.buffers[0].toFloat32Array()], [2, 4, -6], 'the momentum too');
  opt.dispose();
});

test('back off on overflow, grow after growthInterval clean steps (GradScaler), on the device', (t) => {
  const s = new LossScaler({ initScale: 2 ** 16, growthInterval: 3 });
  const step = (finite: boolean) => {
    const gate = tensor([finite ? 0.5 : NaN], []);
    s.update(gate);
    gate.dispose();
  };
  step(false);
  t.deepEqual([s.scale, s.overflowSteps, s.goodSteps], [2 ** 15, 1, 0], 'halved, counted');
  step(true);
  step(true);
  t.deepEqual([s.scale, s.goodSteps], [2 ** 15, 2]);
  step(true);
  t.deepEqual([s.scale, s.goodSteps], [2 ** 16, 0], 'doubled after 3 clean steps');
  step(true);
  step(true);
  step(false);
  t.deepEqual([s.scale, s.goodSteps, s.overflowSteps], [2 ** 15, 0, 2], 'an overflow resets the clean-step count');
  s.restore(1024, 7, 5);
  t.deepEqual([s.scale, s.goodSteps, s.overflowSteps], [1024, 7, 5], 'a resumed state');
  // The scaled loss's gradient carries the scale.
  const x = tensor([0.5, -2], [2]).requireGrad();
  ops.sum(s.scaleLoss(x)).backward();
  t.deepEqual([...x.grad!.toFloat32Array()], [1024, 1024]);
  x.dispose();
  s.dispose();
  const d = new LossScaler();
  t.is(d.growthInterval, 100);
  d.dispose();
  t.throws(() => new LossScaler({ backoffFactor: 2 }), { message: /0 < backoffFactor < 1/ });
});
