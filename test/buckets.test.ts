import test from 'ava';
import { Communicator, GradientBuckets, ops, randn, Tensor } from '../ts';

// Collectives pair by order across ranks, so every rank must start its buckets in the same
// order whatever its batch left without a gradient (an MoE head no sample of it took).
test('gradient buckets start in order even when a later bucket is ready first', (t) => {
  const [a, b, c] = [randn([3]), randn([4]), randn([5])].map((p) => p.requireGrad());
  const started: number[][] = [];
  const comm = {
    allReduceStart: (grads: Tensor[]) => started.push(grads.map((g) => g.numel)),
    wait: () => {},
  } as unknown as Communicator;
  // One parameter a bucket, last first: buckets [c], [b], [a].
  const buckets = new GradientBuckets(comm, [a, b, c], { bucketBytes: 1 });
  t.deepEqual(buckets.buckets.map((k) => k.map((p) => p.numel)), [[5], [4], [3]]);
  buckets.begin();
  ops.sum(ops.mul(a, a)).backward(); // only a gets a gradient: its bucket (the last) is ready first
  t.deepEqual(started, [], 'bucket 2 waits for buckets 0 and 1');
  buckets.finish();
  t.deepEqual(started, [[5], [4], [3]], 'in bucket order, the gradient-less ones as zeros');
  t.deepEqual(Array.from(c.grad!.toFloat32Array()), [0, 0, 0, 0, 0]);
});
