// The golden step (llm.c's habit): a small conv-BN-PReLU net trained two SGD steps here and
// in PyTorch from the same weights and batch. Losses, every parameter gradient, the final
// weights and BN running statistics must agree to 1e-4 relative on the CPU, and to 2e-3 on
// a GPU (cuDNN convolutions in TF32, PyTorch's default there); the GPU run is skipped, with
// the reason, where there is none (a failure with MASKFR_REQUIRE_GPU=1).

import test, { ExecutionContext } from 'ava';
import { Module, nn, ops, setTf32, SGD, Tensor, tidy } from '../ts';
import { gpuTest } from './helpers/gpu';
import { fixtures, fx, fxInt, assertClose } from './helpers/tensors';

class SmallNet extends Module {
  conv1 = this.child('conv1', new nn.Conv2d(3, 8, 3, { padding: 1 }));
  bn1 = this.child('bn1', new nn.BatchNorm(8));
  prelu1 = this.child('prelu1', new nn.PReLU(8));
  conv2 = this.child('conv2', new nn.Conv2d(8, 16, 3, { stride: 2, padding: 1 }));
  bn2 = this.child('bn2', new nn.BatchNorm(16));
  prelu2 = this.child('prelu2', new nn.PReLU(16));
  fc = this.child('fc', new nn.Linear(16 * 8 * 8, 10));
  forward(x: Tensor): Tensor {
    const h = this.prelu1.forward(this.bn1.forward(this.conv1.forward(x)));
    const h2 = this.prelu2.forward(this.bn2.forward(this.conv2.forward(h)));
    return this.fc.forward(ops.flatten(h2));
  }
}

/** `net.<stage>.<name>` fixtures as a state dict (PyTorch's num_batches_tracked aside). */
function state(stage: string): Map<string, Tensor> {
  const prefix = `net.${stage}.`;
  const keys = [...fixtures().tensors.keys()].filter((k) => k.startsWith(prefix) && !k.endsWith('num_batches_tracked'));
  return new Map(keys.map((k) => [k.slice(prefix.length), fx(k)]));
}

function goldenSteps(t: ExecutionContext, device: string, tol: number): void {
  const meta = JSON.parse(fixtures().metadata.cases).net as { lr: number; momentum: number; weightDecay: number; steps: number };
  const net = new SmallNet();
  tidy(() => net.loadStateDict(state('init')));
  net.to(device);
  const opt = new SGD(net.parameters(), { lr: meta.lr, momentum: meta.momentum, weightDecay: meta.weightDecay });
  for (let step = 0; step < meta.steps; step++) {
    tidy(() => {
      opt.zeroGrad();
      const loss = ops.crossEntropy(net.forward(ops.to(fx('net.x'), device)), fxInt('net.labels'));
      t.is(loss.device, device);
      loss.backward();
      assertClose(t, loss, fx(`net.step${step}.loss`), `step ${step} loss`, tol);
      for (const [k, p] of net.namedParameters()) assertClose(t, p.grad, fx(`net.step${step}.grad.${k}`), `step ${step} grad ${k}`, tol);
      opt.step();
    });
  }
  tidy(() => {
    const final = state('final');
    for (const [k, v] of [...net.namedParameters(), ...net.namedBuffers()]) assertClose(t, v, final.get(k)!, `final ${k}`, tol);
  });
  opt.dispose();
  net.dispose();
}

test('a conv-BN-PReLU-linear net takes the same two SGD steps as PyTorch', (t) => goldenSteps(t, 'cpu', 1e-4));

// With TF32 off (PyTorch made the fixture in f64/f32): TF32-rounded convolution inputs alone
// would give gradient errors up to ~1.2e-2 of a tensor's largest value.
gpuTest('... and on cuda:0 (TF32 off)', (t) => {
  const before = setTf32({ convolutions: false, matmul: false });
  try {
    goldenSteps(t, 'cuda:0', 2e-3);
  } finally {
    setTf32(before);
  }
});

test('loadStateDict refuses a state that does not fit, listing every difference', (t) => {
  const net = new SmallNet();
  tidy(() => {
    const s = state('init');
    s.delete('bn1.bias');
    s.set('fc.weight', fx('net.init.conv1.weight'));
    s.set('head.weight', fx('net.init.bn1.bias'));
    const err = t.throws(() => net.loadStateDict(s));
    t.regex(err!.message, /missing bn1\.bias \[8\]/);
    t.regex(err!.message, /fc\.weight: shape \[8, 3, 3, 3\] in the state, \[10, 1024\] in the model/);
    t.regex(err!.message, /unexpected head\.weight/);
  });
  net.dispose();
});
