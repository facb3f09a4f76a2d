// `npm run demo`: a short real training on CPU — a small conv-BN-PReLU network learns the
// toy pattern classes with CosFace-free cross-entropy and SGD, printing loss and held-out
// accuracy. It exercises every native kernel and the autograd tape end to end.

import { manualSeed, memoryStats, nn, noGrad, ops, SGD, tensor, tidy } from '..';
import { patternBatch } from './patterns';

const CLASSES = 8;
const SIZE = 32;
const STEPS = Number(process.env.MASKFR_DEMO_STEPS ?? 120);
const BATCH = 32;

manualSeed(2021);
const net = new nn.Sequential(
  new nn.Conv2d(3, 16, 3, { padding: 1 }),
  new nn.BatchNorm(16),
  new nn.PReLU(16),
  new nn.Conv2d(16, 32, 3, { stride: 2, padding: 1 }),
  new nn.BatchNorm(32),
  new nn.PReLU(32),
  new nn.Conv2d(32, 32, 3, { stride: 2, padding: 1 }),
  new nn.BatchNorm(32),
  new nn.PReLU(32),
  new nn.Flatten(),
  new nn.Dropout(0.1),
  new nn.Linear(32 * 8 * 8, CLASSES),
);
const opt = new SGD(net.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });

function accuracy(n: number): number {
  net.eval();
  const b = patternBatch(n, CLASSES, SIZE, 7);
  const correct = tidy(() =>
    noGrad(() => {
      const logits = net.forward(tensor(b.images, [n, 3, SIZE, SIZE])).toFloat32Array();
      let ok = 0;
      for (let i = 0; i < n; i++) {
        const row = logits.subarray(i * CLASSES, (i + 1) * CLASSES);
        if (row.indexOf(Math.max(...row)) === b.labels[i]) ok++;
      }
      return ok;
    }),
  );
  net.train();
  return correct / n;
}

const t0 = performance.now();
console.log(`maskfr demo: ${STEPS} SGD steps, batch ${BATCH}, ${CLASSES} classes of ${SIZE}×${SIZE} patterns`);
console.log(`held-out accuracy before training: ${(100 * accuracy(256)).toFixed(1)}%`);
for (let step = 1; step <= STEPS; step++) {
  opt.lr = 0.05 * (1 - (step - 1) / STEPS); // linear decay to 0, stepped every iteration
  const b = patternBatch(BATCH, CLASSES, SIZE);
  const loss = tidy(() => {
    opt.zeroGrad();
    const l = ops.crossEntropy(net.forward(tensor(b.images, [BATCH, 3, SIZE, SIZE])), b.labels);
    l.backward();
    opt.step();
    return l.item();
  });
  if (step % 20 === 0 || step === 1) {
    const secs = (performance.now() - t0) / 1000;
    console.log(`step ${String(step).padStart(4)}  loss ${loss.toFixed(4)}  lr ${opt.lr.toFixed(4)}  ${((step * BATCH) / secs).toFixed(0)} img/s`);
  }
}
const acc = accuracy(256);
console.log(`held-out accuracy after training: ${(100 * acc).toFixed(1)}%  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
console.log(`native memory: ${(memoryStats().liveBytes / 1e6).toFixed(2)} MB live, ${(memoryStats().peakBytes / 1e6).toFixed(2)} MB peak`);
opt.dispose();
net.dispose();
if (acc < 0.5) {
  console.error('maskfr demo: training did not learn the patterns (accuracy below 50%)');
  process.exit(1);
}
