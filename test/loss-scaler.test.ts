import test from 'ava';
import { keep, LossScaler, SGD, tensor } from '../ts';

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

test('skip and back off on overflow, grow after growthInterval clean steps (GradScaler)', (t) => {
  const s = new LossScaler({ initScale: 2 ** 16, growthInterval: 3 });
  let applied = 0;
  const step = (finite: boolean) => s.update(finite, () => applied++);
  t.false(step(false));
  t.deepEqual([s.scale, s.overflowSteps, applied], [2 ** 15, 1, 0], 'skipped, halved');
  t.true(step(true));
  t.true(step(true));
  t.is(s.scale, 2 ** 15);
  t.true(step(true));
  t.deepEqual([s.scale, s.goodSteps, applied], [2 ** 16, 0, 3], 'doubled after 3 clean steps');
  step(true);
  step(true);
  step(false);
  t.deepEqual([s.scale, s.goodSteps, s.overflowSteps], [2 ** 15, 0, 2], 'an overflow resets the clean-step count');
  t.is(new LossScaler().growthInterval, 100);
  t.throws(() => new LossScaler({ backoffFactor: 2 }), { message: /0 < backoffFactor < 1/ });
});
