import test from 'ava';
import { ops, randn, tensor, tidy, noGrad, memoryStats, Tensor } from '../ts';

const values = (x: Tensor) => [...x.toFloat32Array()];

test('a tensor used twice receives the sum of both gradients', (t) => {
  tidy(() => {
    const x = tensor([1, -2, 3], [3]).requireGrad();
    ops.sum(ops.add(ops.mul(x, x), ops.scale(x, 3))).backward(); // d/dx (x² + 3x) = 2x + 3
    t.deepEqual(values(x.grad!), [5, -1, 9]);
  });
});

test('gradients accumulate across backward calls until cleared', (t) => {
  tidy(() => {
    const x = tensor([1, 2], [2]).requireGrad();
    ops.sum(ops.scale(x, 2)).backward();
    ops.sum(ops.scale(x, 2)).backward();
    t.deepEqual(values(x.grad!), [4, 4]);
  });
});

test('noGrad records nothing and backward then refuses with a reason', (t) => {
  tidy(() => {
    const x = randn([2, 2]).requireGrad();
    const y = noGrad(() => ops.sum(ops.mul(x, x)));
    t.false(y.requiresGrad);
    t.is(y.node, null);
    t.throws(() => y.backward(), { message: /does not require grad/ });
  });
});

test('backward needs a gradient for a non-scalar output, of the right shape', (t) => {
  tidy(() => {
    const x = randn([2, 3]).requireGrad();
    const y = ops.scale(x, 2);
    t.throws(() => y.backward(), { message: /non-scalar output of shape \[2, 3\]/ });
    t.throws(() => y.backward(randn([3, 2])), { message: /gradient shape \[3, 2\] differs from output shape \[2, 3\]/ });
  });
});

test('backward releases the tape: saved tensors are freed, a second backward is refused', (t) => {
  tidy(() => {
    const x = randn([8, 4]).requireGrad();
    const w = randn([3, 4]).requireGrad();
    const loss = ops.crossEntropy(ops.linear(x, w), [0, 1, 2, 0, 1, 2, 0, 1]);
    t.not(loss.node, null);
    const before = memoryStats().liveBytes;
    loss.backward();
    t.is(loss.node, null, 'the node of the output is released');
    // log-probabilities (8×3 floats) owned by the node were freed; grads of x and w (44 floats) were made.
    t.is(memoryStats().liveBytes - before, (8 * 4 + 3 * 4 - 8 * 3) * 4);
    t.throws(() => loss.backward(), { message: /already released by an earlier backward/ });
  });
});

test('a disposed tensor names the op that used it', (t) => {
  const x = randn([2, 2]);
  x.dispose();
  t.throws(() => ops.scale(x, 2), { message: 'scale: a tensor of shape [2, 2] was used after dispose()' });
});

test('tidy frees intermediates and keeps what it returns', (t) => {
  const base = memoryStats();
  const kept = tidy(() => {
    const a = randn([100]);
    const b = ops.scale(a, 2);
    return { out: ops.add(a, b) };
  });
  t.is(memoryStats().liveTensors, base.liveTensors + 1);
  t.is(memoryStats().liveBytes, base.liveBytes + 400);
  kept.out.dispose();
  t.deepEqual(memoryStats().liveBytes, base.liveBytes);
});
