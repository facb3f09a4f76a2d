import test from 'ava';
import { manualSeed, ops, randn, tensor, tidy, Tensor } from '../ts';

const values = (x: Tensor) => [...x.toFloat32Array()];

test('the same seed gives the same random tensors and dropout masks', (t) => {
  tidy(() => {
    manualSeed(7);
    const a = randn([1000]);
    const da = ops.dropout(a, 0.4);
    manualSeed(7);
    const b = randn([1000]);
    const db = ops.dropout(b, 0.4);
    t.deepEqual(values(a), values(b));
    t.deepEqual(values(da), values(db));
    manualSeed(8);
    t.notDeepEqual(values(randn([1000])), values(a));
  });
});

test('randn has the requested moments', (t) => {
  tidy(() => {
    const v = randn([200_000], { mean: 1, std: 0.1 }).toFloat32Array();
    const mean = v.reduce((s, x) => s + x, 0) / v.length;
    const sd = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
    t.true(Math.abs(mean - 1) < 1e-3, `mean ${mean}`);
    t.true(Math.abs(sd - 0.1) < 1e-3, `std ${sd}`);
  });
});

test('dropout zeroes a fraction p, rescales the rest by 1/(1−p), and its gradient uses the same mask', (t) => {
  tidy(() => {
    const x = tensor(Array.from({ length: 50_000 }, (_, i) => 1 + (i % 7)), [50_000]).requireGrad();
    const y = ops.dropout(x, 0.25, { seed: 99 });
    const yv = y.toFloat32Array();
    const xv = x.toFloat32Array();
    const zeros = yv.filter((v) => v === 0).length / yv.length;
    t.true(Math.abs(zeros - 0.25) < 0.01, `dropped fraction ${zeros}`);
    t.true(yv.every((v, i) => v === 0 || Math.abs(v - xv[i] / 0.75) < 1e-5));
    ops.sum(y).backward();
    const g = x.grad!.toFloat32Array();
    t.true(g.every((v, i) => (yv[i] === 0 ? v === 0 : Math.abs(v - 1 / 0.75) < 1e-6)));
    t.is(ops.dropout(x, 0.25, { training: false }), x, 'identity in evaluation');
  });
});

test('conv forward and backward are bit-identical when repeated', (t) => {
  tidy(() => {
    manualSeed(3);
    const x = randn([5, 8, 14, 14]).requireGrad();
    const w = randn([16, 8, 3, 3]).requireGrad();
    const run = () => {
      x.grad?.dispose();
      w.grad?.dispose();
      x.grad = w.grad = null;
      const y = ops.conv2d(x, w, null, { stride: 2, padding: 1 });
      ops.sum(ops.mul(y, y)).backward();
      return [values(y), values(x.grad!), values(w.grad!)];
    };
    t.deepEqual(run(), run());
  });
});
