import test from 'ava';
import { keep, LossScaler, tensor, Tensor } from '../ts';

function param(grad: number[]): Tensor {
  const p = keep(tensor([1, 2, 3], [3]));
  p.grad = keep(tensor(grad, [3]));
  return p;
}

test('unscale divides the gradients and reports overflow', (t) => {
  const s = new LossScaler({ initScale: 8 });
  const p = param([8, 16, -24]);
  t.true(s.unscale([p]));
  t.deepEqual([...p.grad!.toFloat32Array()], [1, 2, -3]);
  t.false(s.unscale([param([1, Infinity, 0])]));
  t.false(s.unscale([param([NaN, 0, 0])]));
  t.is(s.scaleLoss(tensor([0.5], [])).item(), 4);
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
