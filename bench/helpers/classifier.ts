// One rank of the `train` suite's classifier measurement, run under `maskfr launch`: the
// sharded CosFace step (forward + backward) for CLASSES classes, a global batch of BATCH
// 512-d embeddings and CHUNK classes scored at a time. Rank 0 prints one JSON line: step
// seconds and the growth of the process's peak resident memory over the step.

import { Communicator, randn, ShardedMarginSoftmax, tidy, worldFromEnv } from '../../ts';
import { median } from '../suites/types';

const [classes, batch, chunk] = ['CLASSES', 'BATCH', 'CHUNK'].map((k) => Number(process.env[k]));
const comm = Communicator.connect(worldFromEnv(), { timeoutMs: 120_000 });
const head = new ShardedMarginSoftmax(comm, 512, classes, { chunk, seed: 1 });
const local = batch / comm.world;
const emb = randn([local, 512], { seed: 2 + comm.rank });
emb.requiresGrad = true;
const labels = Array.from({ length: local }, (_, i) => (i * 7919 + comm.rank * 104729) % classes);
const before = process.resourceUsage().maxRSS;
const seconds: number[] = [];
for (let step = 0; step < 6; step++) {
  const t = performance.now();
  tidy(() => {
    head.loss(emb, labels, step).backward();
    head.weight.grad?.dispose();
    head.weight.grad = null;
    emb.grad?.dispose();
    emb.grad = null;
  });
  seconds.push((performance.now() - t) / 1000);
}
const peakMiB = (process.resourceUsage().maxRSS - before) / 1024;
const weightMiB = (head.count * 512 * 4) / 2 ** 20;
if (comm.rank === 0) console.log(JSON.stringify({ seconds: median(seconds.slice(1)), peakMiB, weightMiB }));
