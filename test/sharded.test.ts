// The native sharded step (one rank, classes scored in chunks) against the plain
// margin-softmax loss in tensor ops with autograd (ts/losses/margin.ts) over the classes it
// scored: every class, or the sampled ones (the rows with a gradient). Loss and both gradients
// within 1e-5 relative, for CosFace and ArcFace.

import test from 'ava';
import { ARCFACE, COSFACE, Communicator, marginSoftmaxLoss, ops, randn, ShardedMarginSoftmax, tensor, tidy } from '../ts';
import { relErr } from './helpers/tensors';

for (const [name, margin, sampleRate] of [['CosFace', COSFACE, 1], ['ArcFace', ARCFACE, 1], ['CosFace', COSFACE, 0.3]] as const) {
  test(`one rank: the native sharded step equals the tensor-ops loss (${name}, sampling ${sampleRate})`, (t) => {
    const comm = Communicator.connect({ rank: 0, world: 1, localRank: 0, masterAddr: '127.0.0.1', masterPort: 0 });
    const head = new ShardedMarginSoftmax(comm, 16, 50, { margin, seed: 4, chunk: 7, sampleRate });
    const labels = Int32Array.from([3, 49, 0, 17, 17, 8]);
    tidy(() => {
      const e1 = randn([6, 16], { seed: 5 }).requireGrad();
      const viaNative = head.loss(e1, labels, 3);
      viaNative.backward();
      const [g1, w1] = [e1.grad!.toFloat32Array(), head.weight.grad!.toFloat32Array()];
      // The scored classes: every row of the centres' gradient that is not zero.
      const scored = Array.from({ length: 50 }, (_, r) => r).filter((r) => w1.slice(r * 16, r * 16 + 16).some((v) => v !== 0));
      t.is(scored.length, sampleRate === 1 ? 50 : Math.ceil(0.3 * 50));
      for (const l of labels) t.true(scored.includes(l), `the positive class ${l} is scored`);
      const e2 = tensor(e1.toFloat32Array(), [6, 16]).requireGrad();
      const w = tensor(head.weight.toFloat32Array(), [50, 16]).requireGrad();
      const viaOps = marginSoftmaxLoss(e2, ops.indexRows(w, scored), labels.map((l) => scored.indexOf(l)), margin);
      viaOps.backward();
      t.true(relErr([viaNative.item()], [viaOps.item()]) <= 1e-5, `loss ${viaNative.item()} vs ${viaOps.item()}`);
      t.true(relErr(g1, e2.grad!.toFloat32Array()) <= 1e-5, 'embedding gradient');
      t.true(relErr(w1, w.grad!.toFloat32Array()) <= 1e-5, 'centre gradient');
      t.true(ops.sum(ops.mul(e2.grad!, e2.grad!)).item() > 0);
    });
    head.dispose();
  });
}

test('a label outside the classes is an error naming it and its row, and the communicator stays usable', (t) => {
  const comm = Communicator.connect({ rank: 0, world: 1, localRank: 0, masterAddr: '127.0.0.1', masterPort: 0 });
  const head = new ShardedMarginSoftmax(comm, 16, 50, { seed: 4 });
  tidy(() => {
    const e = randn([3, 16], { seed: 5 }).requireGrad();
    t.throws(() => head.loss(e, [3, 50, 0], 0), { message: /partialFc: label 50 at row 1 is outside the classes \[0, 50\)/ });
    t.throws(() => head.loss(e, [-1, 2, 0], 0), { message: /label -1 at row 0/ });
    // The communicator is still usable: the step runs.
    t.true(Number.isFinite(head.loss(e, [3, 49, 0], 0).item()));
  });
  head.dispose();
});
