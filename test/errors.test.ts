import test from 'ava';
import { ops, randn, tensor, full, tidy } from '../ts';
import { native } from '../ts/native';

test('shape mismatches name the op and both shapes', (t) => {
  tidy(() => {
    t.throws(() => ops.conv2d(randn([2, 3, 8, 8]), randn([4, 5, 3, 3])), {
      message: 'conv2d: input shape [2, 3, 8, 8] has 3 channels but weight shape [4, 5, 3, 3] expects 5',
    });
    t.throws(() => ops.mul(randn([2, 3]), randn([3, 2])), { message: 'mul: shapes differ: [2, 3] and [3, 2]' });
    t.throws(() => ops.linear(randn([2, 7]), randn([4, 6])), {
      message: 'linear: input shape [2, 7] has 7 features but weight shape [4, 6] expects 6',
    });
    t.throws(() => ops.matmul(randn([2, 3]), randn([2, 3])), { message: /matmul: inner dimensions differ: \[2, 3\] · \[2, 3\]/ });
    t.throws(() => ops.batchNorm(randn([4, 3]), randn([5]), randn([5]), randn([5]), randn([5]), { training: true }), {
      message: 'batch_norm: input shape [4, 3] has 3 channels but the parameters have 5',
    });
    t.throws(() => ops.conv2d(randn([1, 1, 2, 2]), randn([1, 1, 5, 5])), { message: /conv2d: kernel 5x5 does not fit input shape \[1, 1, 2, 2\]/ });
  });
});

test('bad arguments are refused with what was expected', (t) => {
  tidy(() => {
    t.throws(() => ops.crossEntropy(randn([2, 3]), [0, 3]), { message: 'cross_entropy: label 3 at index 1 is outside [0, 3)' });
    t.throws(() => ops.crossEntropy(randn([2, 3]), [0]), { message: 'cross_entropy: 1 labels for 2 rows of logits' });
    t.throws(() => ops.dropout(randn([4]), 1), { message: 'dropout: probability must be in [0, 1), got 1' });
    t.throws(() => tensor([1, 2, 3], [2, 2]), { message: 'tensor: 3 values do not fill shape [2, 2] (4 elements)' });
    t.throws(() => full([2, -1], 0), { message: /full: shape must be non-negative integers/ });
    t.throws(() => ops.conv2d(randn([1, 1, 4, 4]), randn([1, 1, 3, 3]), null, { stride: 0 }), { message: /stride must be positive/ });
    t.throws(() => ops.reshape(randn([2, 3]), [4, -1]), { message: /reshape: cannot reshape \[2, 3\] \(6 elements\)/ });
  });
});

test('f16/bf16 storage round-trips and compute ops ask for f32', (t) => {
  tidy(() => {
    const x = tensor([1.5, -2.25, 3e-3, 65504], [4]);
    const h = x.handle('test').cast('f16');
    t.is(h.dtype, 'f16');
    const back = [...h.toFloat32()];
    t.deepEqual([back[0], back[1], back[3]], [1.5, -2.25, 65504], 'exactly representable values survive');
    t.true(Math.abs(back[2] - 3e-3) / 3e-3 < 2 ** -11, `3e-3 rounds to the nearest f16 (${back[2]})`);
    const b = x.handle('test').cast('bf16');
    t.deepEqual([...b.toFloat32()].slice(0, 2), [1.5, -2.25]);
    t.throws(() => native.scale(h, 2), { message: 'scale: expected an f32 tensor, got f16 of shape [4]' });
    h.dispose();
    b.dispose();
  });
});

// (A cuda:N device without a GPU: test/cuda.test.ts.)
test('an unknown device is refused with a clear error', (t) => {
  t.throws(() => full([2], 1, 'tpu'), { message: "device: unknown device 'tpu': expected 'cpu' or 'cuda:N'" });
});

test('a Rust panic becomes a JS Error, never an abort', (t) => {
  t.throws(() => native.panicGuardSelfTest(), { message: /panic guard self-test/ });
  t.is(ops.sum(tensor([1, 2], [2])).item(), 3, 'the addon still works afterwards');
});
