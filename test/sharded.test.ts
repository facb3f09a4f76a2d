// The two ways the classifier's loss is computed agree: the native sharded step (CPU ranks)
// and the tensor-ops loss a GPU runs when one rank holds every class (ts/losses/sharded.ts),
// with every class scored and with sampled negatives (the same draw). Loss and both
// gradients within 1e-5 relative, for CosFace and ArcFace.

import test from 'ava';
import { ARCFACE, COSFACE, Communicator, ops, randn, ShardedMarginSoftmax, tensor, tidy } from '../ts';
import { relErr } from './helpers';

for (const [name, margin, sampleRate] of [['CosFace', COSFACE, 1], ['ArcFace', ARCFACE, 1], ['CosFace', COSFACE, 0.3]] as const) {
  test(`one rank: the native sharded step and the tensor-ops loss agree (${name}, sampling ${sampleRate})`, (t) => {
    const comm = Communicator.connect({ rank: 0, world: 1, localRank: 0, masterAddr: '127.0.0.1', masterPort: 0 });
    const head = new ShardedMarginSoftmax(comm, 16, 50, { margin, seed: 4, chunk: 7, sampleRate });
    const labels = Int32Array.from([3, 49, 0, 17, 17, 8]);
    tidy(() => {
      const e1 = randn([6, 16], { seed: 5 }).requireGrad();
      const viaNative = head.loss(e1, labels, 3);
      viaNative.backward();
      const [g1, w1] = [e1.grad!.toFloat32Array(), head.weight.grad!.toFloat32Array()];
      head.weight.grad!.dispose();
      head.weight.grad = null;
      const e2 = tensor(e1.toFloat32Array(), [6, 16]).requireGrad();
      const viaOps = head.lossInOps(e2, labels, 3);
      viaOps.backward();
      t.true(relErr([viaNative.item()], [viaOps.item()]) <= 1e-5, `loss ${viaNative.item()} vs ${viaOps.item()}`);
      t.true(relErr(g1, e2.grad!.toFloat32Array()) <= 1e-5, 'embedding gradient');
      const w2 = head.weight.grad!.toFloat32Array();
      t.true(relErr(w1, w2) <= 1e-5, 'centre gradient');
      // Sampling leaves the unscored centres' rows without gradient, in both.
      const zeroRows = (w: Float32Array) => Array.from({ length: 50 }, (_, r) => w.slice(r * 16, r * 16 + 16).every((v) => v === 0)).filter(Boolean).length;
      t.is(zeroRows(w2), zeroRows(w1));
      t.is(zeroRows(w1), sampleRate === 1 ? 0 : 50 - Math.ceil(0.3 * 50));
      t.true(ops.sum(ops.mul(e2.grad!, e2.grad!)).item() > 0);
    });
    head.dispose();
  });
}
