// The two ways the classifier's loss is computed agree: the native sharded step (CPU ranks)
// and the tensor-ops loss a GPU runs when one rank holds every class (ts/losses/sharded.ts).
// Loss and both gradients within 1e-5 relative, for CosFace and ArcFace.

import test from 'ava';
import { ARCFACE, COSFACE, Communicator, marginSoftmaxLoss, ops, randn, ShardedMarginSoftmax, tensor, tidy } from '../ts';
import { relErr } from './helpers';

for (const [name, margin] of [['CosFace', COSFACE], ['ArcFace', ARCFACE]] as const) {
  test(`one rank: the native sharded step and the tensor-ops loss agree (${name})`, (t) => {
    const comm = Communicator.connect({ rank: 0, world: 1, localRank: 0, masterAddr: '127.0.0.1', masterPort: 0 });
    const head = new ShardedMarginSoftmax(comm, 16, 50, { margin, seed: 4, chunk: 7 });
    const labels = Int32Array.from([3, 49, 0, 17, 17, 8]);
    tidy(() => {
      const e1 = randn([6, 16], { seed: 5 }).requireGrad();
      const native = head.loss(e1, labels, 0);
      native.backward();
      const [g1, w1] = [e1.grad!.toFloat32Array(), head.weight.grad!.toFloat32Array()];
      head.weight.grad!.dispose();
      head.weight.grad = null;
      const e2 = tensor(e1.toFloat32Array(), [6, 16]).requireGrad();
      const viaOps = marginSoftmaxLoss(e2, head.weight, labels, margin);
      viaOps.backward();
      t.true(relErr([native.item()], [viaOps.item()]) <= 1e-5, `loss ${native.item()} vs ${viaOps.item()}`);
      t.true(relErr(g1, e2.grad!.toFloat32Array()) <= 1e-5, 'embedding gradient');
      t.true(relErr(w1, head.weight.grad!.toFloat32Array()) <= 1e-5, 'centre gradient');
      t.true(ops.sum(ops.mul(e2.grad!, e2.grad!)).item() > 0);
    });
    head.dispose();
  });
}
