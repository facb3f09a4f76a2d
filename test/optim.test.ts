import test from 'ava';
import { clipGradNorm, polyLr, tensor, ops, tidy } from '../ts';

test('warmup then polynomial decay, stepped per iteration', (t) => {
  const s = { base: 0.1, warmupSteps: 4, totalSteps: 14 };
  const lrs = Array.from({ length: 14 }, (_, i) => polyLr(s, i));
  t.deepEqual(lrs.slice(0, 4).map((v) => +v.toFixed(6)), [0.025, 0.05, 0.075, 0.1]);
  t.is(+lrs[4].toFixed(6), 0.1);
  t.is(+lrs[9].toFixed(6), 0.05);
  t.true(lrs.slice(4).every((v, i, a) => i === 0 || v < a[i - 1]), 'decreasing after warmup');
  t.is(polyLr(s, 14), 0);
  t.is(+polyLr({ ...s, power: 2 }, 9).toFixed(6), 0.025);
  t.throws(() => polyLr({ base: 1, warmupSteps: 5, totalSteps: 5 }, 0), { message: /need 0 ≤ warmupSteps < totalSteps/ });
});

test('gradient-norm clipping scales all gradients to the max norm, as torch does', (t) => {
  const a = tensor([1, 2], [2]).requireGrad();
  const b = tensor([1], [1]).requireGrad();
  tidy(() => ops.add(ops.sum(ops.scale(a, 3)), ops.sum(ops.scale(b, 4))).backward()); // grads [3, 3] and [4]
  const total = clipGradNorm([a, b], 1);
  t.is(+total.toFixed(5), +Math.sqrt(34).toFixed(5));
  const [ga, gb] = [a.grad!.toFloat32Array(), b.grad!.toFloat32Array()];
  t.is(+Math.hypot(ga[0], ga[1], gb[0]).toFixed(5), 1);
  t.is(+(ga[0] / gb[0]).toFixed(5), 0.75, 'directions kept');
  const before = [...a.grad!.toFloat32Array()];
  clipGradNorm([a, b], 5);
  t.deepEqual([...a.grad!.toFloat32Array()], before, 'under the limit: unchanged');
});
