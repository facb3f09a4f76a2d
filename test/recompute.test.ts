import test from 'ava';
import { checkpoint, COSFACE, createModel, keep, manualSeed, MarginSoftmax, memoryStats, ops, randn, resetPeakMemory, tidy, Tensor } from '../ts';

/** One training forward + backward; gradients, running statistics and the step's peak live bytes. */
function step(stages: boolean[]) {
  manualSeed(3);
  const model = createModel('tiny', { layers: [3, 4, 4, 2] });
  const head = new MarginSoftmax(64, 7, COSFACE);
  model.checkpointing = stages;
  const x = keep(randn([6, 3, 112, 112], { seed: 9 }));
  resetPeakMemory();
  const before = memoryStats().liveBytes;
  tidy(() => head.loss(model.forward(x), [0, 1, 2, 3, 4, 5]).backward());
  const peak = memoryStats().peakBytes - before;
  const grads = model.parameters().map((p: Tensor) => (p.grad === null ? null : [...p.grad.toFloat32Array()]));
  const stats = model.namedBuffers().map(([, b]) => [...b.toFloat32Array()]);
  x.dispose();
  model.dispose();
  head.dispose();
  return { grads, stats, peak };
}

test('activation checkpointing: identical gradients and running statistics, less memory', (t) => {
  const plain = step([false, false, false, false]);
  const ckpt = step([true, true, true, true]);
  t.deepEqual(ckpt.grads, plain.grads, 'the recompute gives the very same gradients');
  t.deepEqual(ckpt.stats, plain.stats, 'BatchNorm counts the batch once');
  t.true(ckpt.peak < 0.7 * plain.peak, `peak ${ckpt.peak} vs ${plain.peak} bytes`);
  const some = step([true, false, false, false]);
  t.deepEqual(some.grads, plain.grads);
  t.true(some.peak < plain.peak && some.peak > ckpt.peak, `per stage: ${some.peak} between ${ckpt.peak} and ${plain.peak}`);
});

test('a recompute replays the random seeds: dropout inside a checkpoint draws the same mask', (t) => {
  const run = (ck: boolean) =>
    tidy(() => {
      manualSeed(5);
      const w = keep(randn([4, 8], { seed: 1 }));
      w.requiresGrad = true;
      const f = (v: Tensor) => ops.dropout(ops.matmul(v, w), 0.5);
      const x = randn([3, 4], { seed: 2 });
      const y = ck ? checkpoint(f, x, [w]) : f(x);
      ops.sum(ops.mul(y, y)).backward();
      const g = [...w.grad!.toFloat32Array()];
      w.dispose();
      return g;
    });
  const plain = run(false);
  t.true(plain.filter((v) => v === 0).length < plain.length, 'some gradient flows');
  t.deepEqual(run(true), plain);
});
