// The `gpu-train` suite, our side (bundled by bench/gpu/prepare.sh, run by run.sh on a lent
// GPU): one training step of an IResNet on cuda:0 as the trainer takes it — f16 autocast
// forward, the sharded CosFace classifier over 100k classes on the GPU (one rank, in chunks
// of 8192 classes), scaled-loss backward, the gate and the loss scale's update (on the device, nothing read back),
// SGD — on a fixed random batch. One JSON line per case (images/s over 10 timed
// steps after 3 warm ones, peak device memory); bench/gpu/torch_train.py times PyTorch's eager
// AMP step on the same cases. resnet240 runs at the largest batch of 128, 96, 64, 32 that fits,
// with and without activation checkpointing.

import {
  autocast, Communicator, createModel, emptyCache, keep, LossScaler, memoryStats, modelConfig, randn, resetPeakMemory, SGD, tf32, ShardedMarginSoftmax, gradSquaredNorm, synchronize, tidy,
} from '../../ts';

const comm = Communicator.connect({ rank: 0, world: 1, localRank: 0, masterAddr: '127.0.0.1', masterPort: 0 });

const DEVICE = 'cuda:0';
const CLASSES = 100_000;

function run(network: string, batch: number, checkpointing: boolean): { imagesPerSecond: number; peakBytes: number } {
  // Everything made here (even what a failed allocation leaves half made) is disposed on the
  // way out, so a smaller batch tried next starts from a clean device.
  const made: { dispose(): void }[] = [];
  const own = <T extends { dispose(): void }>(t: T): T => (made.push(t), t);
  const model = own(createModel(network));
  model.checkpointing = [checkpointing, checkpointing, checkpointing, checkpointing];
  const labels = Int32Array.from({ length: batch }, (_, i) => (i * 7919) % CLASSES);
  const sgd = { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 };
  const scaler = own(new LossScaler({ initScale: 1024 }, DEVICE));
  try {
    model.to(DEVICE);
    const head = own(new ShardedMarginSoftmax(comm, 512, CLASSES, { seed: 1 })).to(DEVICE);
    const x = own(randn([batch, 3, 112, 112], { device: DEVICE }));
    const [optB, optH] = [own(new SGD(model.parameters(), sgd)), own(new SGD(head.parameters(), sgd))];
    let i = 0;
    return timeSteps(batch, () => {
      tidy(() => {
        const emb = autocast('f16', () => model.forward(x));
        scaler.scaleLoss(head.loss(emb, labels, i++)).backward();
      });
      // As the trainer: gates and the scale's update on the device, nothing read back.
      const [gateB, gateH] = tidy(() => {
        const sq = gradSquaredNorm([...model.parameters(), ...head.parameters()], DEVICE);
        return [keep(scaler.gate(sq, 5)), keep(scaler.gate(sq))];
      });
      optB.step(gateB);
      optH.step(gateH);
      scaler.update(gateB);
      [gateB, gateH].forEach((g) => g.dispose());
      [optB, optH].forEach((o) => o.zeroGrad());
    });
  } finally {
    made.reverse().forEach((t) => t.dispose());
    emptyCache(DEVICE);
  }
}

/** Images/s over 10 steps after 3 warm ones, and the device's peak during them. */
function timeSteps(batch: number, step: () => void): { imagesPerSecond: number; peakBytes: number } {
  for (let i = 0; i < 3; i++) step();
  synchronize(DEVICE);
  resetPeakMemory(DEVICE);
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) step();
  synchronize(DEVICE);
  const seconds = (performance.now() - t0) / 1000;
  return { imagesPerSecond: (10 * batch) / seconds, peakBytes: memoryStats(DEVICE).peakBytes };
}

/** Runs and prints one case; whether it ran out of device memory (then a smaller batch may fit). */
function report(network: string, batch: number, checkpointing: boolean): 'ran' | 'out of memory' | 'failed' {
  const c = modelConfig(network);
  try {
    const r = run(network, batch, checkpointing);
    console.log(JSON.stringify({ network, layers: c.layers, placement: c.stride, batch, checkpointing, classes: CLASSES, precision: 'f16', tf32: tf32(), ...r }));
    return 'ran';
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    console.error(`${network} batch ${batch}${checkpointing ? ' checkpointed' : ''}: ${msg}`);
    return msg.includes('out of device memory') ? 'out of memory' : 'failed';
  }
}

report('r50', 128, false);
for (const ck of [false, true]) [128, 96, 64, 32].find((b) => report('resnet240', b, ck) !== 'out of memory');
