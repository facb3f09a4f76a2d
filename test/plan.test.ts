import test from 'ava';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { COSFACE, createModel, keep, MarginSoftmax, memoryStats, plan, randn, resetPeakMemory, tidy } from '../ts';

// arcface_torch's published GPU memory (MB per GPU) of partial FC 0.1: r50, fp16, batch 128
// on each of 8 V100s (docs/speed_benchmark.md).
const PFC01: [number, number][] = [
  [125000, 4868], [500000, 5202], [1000000, 5620], [1400000, 6056], [2000000, 6472], [4000000, 8284],
  [5500000, 9854], [8000000, 12310], [16000000, 19950], [29000000, 32324],
];

test("the classifier's memory follows arcface_torch's partial-FC table (growth over 125k classes, within 10%)", (t) => {
  const at = (classes: number) => {
    const p = plan({ model: 'r50', classes, gpus: 8, batch: 128, sampleRate: 0.1, fp16: true });
    return (p.classifier + p.logitsUnchunked) / 2 ** 20;
  };
  for (const [classes, mb] of PFC01.slice(1)) {
    const ratio = (mb - PFC01[0][1]) / (at(classes) - at(PFC01[0][0]));
    t.true(ratio > 0.9 && ratio < 1.1, `${classes} classes: published growth / planned = ${ratio.toFixed(3)}`);
  }
});

test('planned activations + gradients match the measured peak of a CPU training step (within 15%)', (t) => {
  for (const checkpointing of [false, true]) {
    const model = createModel('small');
    model.checkpointing = [checkpointing, checkpointing, checkpointing, checkpointing];
    const head = new MarginSoftmax(128, 10, COSFACE);
    const x = keep(randn([8, 3, 112, 112], { seed: 1 }));
    resetPeakMemory();
    const before = memoryStats().liveBytes;
    tidy(() => head.loss(model.forward(x), [0, 1, 2, 3, 4, 5, 6, 7]).backward());
    const measured = memoryStats().peakBytes - before;
    const p = plan({ model: 'small', classes: 10, gpus: 1, batch: 8, checkpointing });
    const ratio = (p.activations + p.gradients) / measured;
    t.true(ratio > 0.85 && ratio < 1.15, `checkpointing ${checkpointing}: planned / measured = ${ratio.toFixed(3)}`);
    [model, head, x].forEach((m) => m.dispose());
  }
});

test('maskfr plan prints the budget, the verdict for a card and the wall time', (t) => {
  const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
  const args = ['plan', '--model', 'resnet240', '--classes', '2059906', '--gpus', '8', '--batch', '128', '--sample-rate', '0.2', '--fp16'];
  const r = spawnSync(process.execPath, [cli, ...args, '--card-gib', '80', '--images-per-second', '4000'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /resnet240: 137\.2M parameters; per GPU:/);
  t.regex(r.stdout, /classifier +[\d.]+ GiB {2}\(weight, gradient, momentum of 257,489 classes\)/);
  t.regex(r.stdout, /total +[\d.]+ GiB: fits a 80 GiB card/);
  t.regex(r.stdout, /20 epochs of WebFace42M \(42,474,557 images\) at 4000 images\/s: 59\.0 hours \(2\.5 days\)/);
  const small = spawnSync(process.execPath, [cli, ...args, '--card-gib', '16'], { encoding: 'utf8' });
  t.is(small.status, 1);
  t.regex(small.stdout, /does NOT fit a 16 GiB card/);
  const ck = spawnSync(process.execPath, [cli, ...args, '--checkpointing'], { encoding: 'utf8' });
  const gib = (s: string) => Number(/activations +([\d.]+) GiB/.exec(s)![1]);
  t.true(gib(ck.stdout) < 0.5 * gib(r.stdout), 'checkpointing cuts the activations');
});
