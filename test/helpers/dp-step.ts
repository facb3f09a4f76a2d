// Run under `maskfr launch` by test/parallel.test.ts: three SGD steps of a tiny IResNet (BN in
// eval mode, so per-rank batch statistics do not enter) with the sharded CosFace head on a
// global batch of 8 split over the ranks; writes each rank's losses and weights as JSON to
// $OUT/rank-R.json (the backbone as updates from the initial weights). The same numbers must come out whatever the world size.

import fs from 'node:fs';
import path from 'node:path';
import {
  averageGradients, broadcastModule, Communicator, createModel, GradientBuckets, manualSeed, ops, randn, SGD, ShardedMarginSoftmax, tidy, worldFromEnv,
} from '../../ts';

const comm = Communicator.connect(worldFromEnv(), { timeoutMs: 30_000 });
manualSeed(5 + comm.rank); // different on every rank: the broadcast must make them agree
const model = createModel('tiny').eval();
const head = new ShardedMarginSoftmax(comm, 64, 11, { seed: 9, chunk: 2 });
broadcastModule(comm, model);
const initial = model.parameters().map((p) => p.toFloat32Array());
const opt = new SGD([...model.parameters(), ...head.parameters()], { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
const B = 8;
const per = B / comm.world;
const mine = Array.from({ length: per }, (_, i) => comm.rank * per + i);
// BUCKET_BYTES: average through background buckets during the backward instead (sent as f16
// with BUCKET_COMPRESS=f16).
const compress = process.env.BUCKET_COMPRESS === 'f16' ? 'f16' : 'none';
const buckets = process.env.BUCKET_BYTES ? new GradientBuckets(comm, model.parameters(), { bucketBytes: Number(process.env.BUCKET_BYTES), compress }) : null;
const losses: number[] = [];
for (let step = 0; step < 3; step++) {
  tidy(() => {
    const x = ops.indexRows(randn([B, 3, 112, 112], { seed: 100 + step }), mine);
    const labels = mine.map((i) => (i * 3 + step) % 11);
    const loss = head.loss(model.forward(x), labels, step);
    buckets?.begin();
    loss.backward();
    if (buckets) buckets.finish();
    else averageGradients(comm, model.parameters());
    // No clipping: it would rescale a wrongly summed gradient back to the right norm.
    opt.step();
    opt.zeroGrad();
    losses.push(loss.item());
  });
}
const out = {
  losses,
  first: head.first,
  // What training changed: comparing updates, not weights, keeps the check sharp.
  backbone: model.parameters().map((p, i) => [...p.toFloat32Array()].map((v, j) => v - initial[i][j])),
  head: [...head.weight.toFloat32Array()],
  buckets: buckets?.buckets.length ?? 0,
};
fs.writeFileSync(path.join(process.env.OUT!, `rank-${comm.rank}.json`), JSON.stringify(out));
