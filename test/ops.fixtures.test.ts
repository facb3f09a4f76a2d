// Every op, forward and backward through the autograd tape, against PyTorch (float64
// reference stored as float32). Tolerance: max|ours − torch| / max|torch| ≤ 1e-4.

import test from 'ava';
import { angleDistillation, KdForm, ops, Tensor, tensor, tidy } from '../ts';
import { fixtures, fx, fxInt, has, assertClose } from './helpers/tensors';

type Case = { op: string; [k: string]: unknown };
const cases = JSON.parse(fixtures().metadata.cases) as Record<string, Case>;

function inputsOf(name: string): Map<string, Tensor> {
  const prefix = `${name}.in.`;
  const m = new Map<string, Tensor>();
  for (const key of fixtures().tensors.keys()) {
    if (key.startsWith(prefix)) m.set(key.slice(prefix.length), fx(key));
  }
  return m;
}

const pair = (v: unknown) => v as [number, number];

/** Runs case `c` on inputs `i` (leaves requiring grad) and returns the output. */
const RUN: Record<string, (i: Map<string, Tensor>, c: Case, name: string) => Tensor> = {
  conv2d: (i, c) => ops.conv2d(i.get('x')!, i.get('w')!, i.get('b') ?? null, { stride: pair(c.stride), padding: pair(c.padding) }),
  batchNorm: (i, c) =>
    ops.batchNorm(i.get('x')!, i.get('weight')!, i.get('bias')!, i.get('running_mean')!, i.get('running_var')!, { training: c.training as boolean }),
  prelu: (i) => ops.prelu(i.get('x')!, i.get('alpha')!),
  linear: (i) => ops.linear(i.get('x')!, i.get('w')!, i.get('b')!),
  matmul: (i, c) => ops.matmul(i.get('a')!, i.get('b')!, { transA: c.transA as boolean, transB: c.transB as boolean }),
  add: (i) => ops.add(i.get('a')!, i.get('b')!),
  mul: (i) => ops.mul(i.get('a')!, i.get('b')!),
  addChannel: (i) => ops.addChannel(i.get('x')!, i.get('v')!),
  indexRows: (i, _c, name) => ops.indexRows(i.get('x')!, fxInt(`${name}.idx`)),
  scatterRows: (i, c, name) => ops.scatterRows(i.get('x')!, fxInt(`${name}.idx`), c.rows as number),
  scale: (i, c) => ops.scale(i.get('a')!, c.s as number),
  sum: (i) => ops.sum(i.get('x')!),
  mean: (i) => ops.mean(i.get('x')!),
  flatten: (i) => {
    const ramp = Array.from({ length: 120 }, (_, k) => k % 60); // torch.arange(60) broadcast over 2 rows
    return ops.mul(ops.flatten(i.get('x')!), tensor(ramp, [2, 60]));
  },
  l2Normalize: (i) => ops.l2Normalize(i.get('x')!),
  logSoftmax: (i) => ops.logSoftmax(i.get('x')!),
  crossEntropy: (i, _c, name) => ops.crossEntropy(i.get('logits')!, fxInt(`${name}.labels`)),
  kd: (i, c) => angleDistillation(i.get('x')!, fx('kd.teacher'), c.form as KdForm),
  // The whole margin-softmax loss: normalise, cosines, margin, cross-entropy.
  margin: (i, c) => {
    const labels = fxInt('margin.labels');
    const cos = ops.matmul(ops.l2Normalize(i.get('x')!), ops.l2Normalize(i.get('w')!), { transB: true });
    return ops.crossEntropy(ops.marginLogits(cos, labels, c as unknown as ops.Margin), labels);
  },
};

for (const [name, c] of Object.entries(cases)) {
  if (c.op === 'net') continue;
  test(`${name}: ${c.op} forward and backward match PyTorch`, (t) => {
    tidy(() => {
      const inputs = inputsOf(name);
      for (const [k, v] of inputs) if (has(`${name}.grad.${k}`)) v.requireGrad();
      const run = RUN[c.op];
      t.truthy(run, `no runner for op ${c.op}`);
      const out = run(inputs, c, name);
      assertClose(t, out, fx(`${name}.out`), `${name} output`);
      out.backward(fx(`${name}.gy`));
      for (const [k, v] of inputs) {
        if (has(`${name}.grad.${k}`)) assertClose(t, v.grad, fx(`${name}.grad.${k}`), `${name} d${k}`);
      }
      if (has(`${name}.running_mean_after`)) {
        assertClose(t, inputs.get('running_mean')!, fx(`${name}.running_mean_after`), `${name} running_mean`);
        assertClose(t, inputs.get('running_var')!, fx(`${name}.running_var_after`), `${name} running_var`);
      }
      inputs.forEach((v) => v.dispose());
    });
  });
}
