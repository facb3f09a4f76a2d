import test from 'ava';
import { memoryStats, resetPeakMemory, nn, ops, randn, SGD, tidy, Tensor } from '../ts';

function smallNet() {
  return new nn.Sequential(
    new nn.Conv2d(3, 8, 3, { padding: 1 }),
    new nn.BatchNorm(8),
    new nn.PReLU(8),
    new nn.Conv2d(8, 8, 3, { stride: 2, padding: 1 }),
    new nn.BatchNorm(8),
    new nn.PReLU(8),
    new nn.Flatten(),
    new nn.Dropout(0.2),
    new nn.Linear(8 * 8 * 8, 5),
  );
}

test('forward + backward + dispose of a small conv net returns live bytes to the baseline', (t) => {
  const base = memoryStats();
  resetPeakMemory();
  const net = smallNet();
  const opt = new SGD(net.parameters(), { lr: 0.1, momentum: 0.9 });
  for (let i = 0; i < 3; i++) {
    tidy(() => {
      opt.zeroGrad();
      const loss = ops.crossEntropy(net.forward(randn([4, 3, 16, 16])), [0, 1, 2, 3]);
      loss.backward();
      opt.step();
    });
  }
  const during = memoryStats();
  t.true(during.liveBytes > base.liveBytes, 'parameters, gradients and momentum are live');
  t.true(during.peakBytes > during.liveBytes, 'activations raised the peak');
  opt.zeroGrad();
  opt.dispose();
  net.dispose();
  const after = memoryStats();
  t.is(after.liveBytes, base.liveBytes);
  t.is(after.liveTensors, base.liveTensors);
});

test('live bytes do not grow across training steps', (t) => {
  const net = smallNet();
  const opt = new SGD(net.parameters(), { lr: 0.01 });
  const step = () =>
    tidy(() => {
      opt.zeroGrad();
      ops.crossEntropy(net.forward(randn([2, 3, 16, 16])), [1, 4]).backward();
      opt.step();
    });
  step();
  const first = memoryStats().liveBytes;
  for (let i = 0; i < 5; i++) step();
  t.is(memoryStats().liveBytes, first);
  opt.zeroGrad();
  opt.dispose();
  net.dispose();
});

test('a reshape view keeps storage alive after its source is disposed', (t) => {
  const base = memoryStats().liveBytes;
  const x = randn([4, 6]);
  const v: Tensor = ops.reshape(x, [24]);
  x.dispose();
  t.is(memoryStats().liveBytes, base + 96);
  t.is(v.toFloat32Array().length, 24);
  v.dispose();
  t.is(memoryStats().liveBytes, base);
});

test('a throw inside tidy disposes what the scope made before the error goes on', (t) => {
  const base = memoryStats().liveBytes;
  t.throws(
    () =>
      tidy(() => {
        const a = randn([1000], { seed: 1 });
        ops.mul(a, a);
        throw new Error('out of memory, say');
      }),
    { message: 'out of memory, say' },
  );
  t.is(memoryStats().liveBytes, base);
});
