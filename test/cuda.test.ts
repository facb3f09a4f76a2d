// The CUDA device from TypeScript. Everywhere: asking for a GPU that is not there is a clear
// Error naming what is missing, and nothing already on the CPU is lost. With a GPU: tensors
// move both ways, ops and their gradients cross devices, memory is counted per device.

import test from 'ava';
import { Communicator, memoryStats, emptyCache, nn, ops, randn, synchronize, tensor, tidy, zeros } from '../ts';
import { gpuProblem } from './helpers';

const noGpu = gpuProblem();
const gpuTest = noGpu === null ? test : test.skip;
const why = noGpu === null ? '' : ` (skipped: ${noGpu.slice(0, 60)})`;

(noGpu === null ? test.skip : test)('without a GPU, cuda:0 is an Error naming the missing piece and CPU tensors survive', (t) => {
  t.throws(() => zeros([2], 'cuda:0'), { message: /full: cuda:0: .*not found; tried/ });
  t.throws(() => randn([2], { device: 'cuda:0' }), { message: /randn: cuda:0: / });
  t.throws(() => memoryStats('cuda:0'), { message: /memoryStats: cuda:0: / });
  const x = tensor([1, 2, 3], [3]);
  t.throws(() => x.moveTo_('cuda:0'), { message: /to: cuda:0: / });
  t.is(x.device, 'cpu');
  t.deepEqual([...x.toFloat32Array()], [1, 2, 3]);
  const m = new nn.Linear(3, 2);
  t.throws(() => m.to('cuda:0'));
  t.true(m.parameters().every((p) => p.device === 'cpu' && !p.disposed));
  m.dispose();
  x.dispose();
  // NCCL for GPU tensors between ranks: refused with what is missing, the TCP ranks intact.
  const comm = Communicator.connect({ rank: 0, world: 1, localRank: 0, masterAddr: '127.0.0.1', masterPort: 0 });
  t.throws(() => comm.attachGpu('cpu'), { message: /attachGpu: expected 'cuda:N', got 'cpu'/ });
  t.throws(() => comm.attachGpu('cuda:0'), { message: /lib(nccl|cuda) \(.*\) not found; tried/ });
  t.deepEqual(comm.allReduceValues([1, 2]), [1, 2]);
});

gpuTest(`tensors and gradients cross between cpu and cuda:0${why}`, (t) => {
  tidy(() => {
    const x = randn([4, 5], { seed: 3 }).requireGrad();
    const g = ops.to(x, 'cuda:0');
    t.is(g.device, 'cuda:0');
    t.deepEqual([...g.toFloat32Array()], [...x.toFloat32Array()]);
    const y = ops.sum(ops.mul(g, g));
    y.backward();
    const want = x.toFloat32Array().map((v) => 2 * v);
    const got = x.grad!.toFloat32Array();
    t.is(x.grad!.device, 'cpu');
    t.true(got.every((v, i) => Math.abs(v - want[i]) <= 1e-5 * Math.abs(want[i]) + 1e-6));
    const h = ops.cast(g, 'f16');
    t.is(h.dtype, 'f16');
  });
});

gpuTest(`device memory is counted and cached per device${why}`, (t) => {
  synchronize('cuda:0');
  const before = memoryStats('cuda:0');
  const x = zeros([1 << 20], 'cuda:0');
  t.true(memoryStats('cuda:0').liveBytes >= before.liveBytes + 4 * (1 << 20));
  x.dispose();
  t.is(memoryStats('cuda:0').liveBytes, before.liveBytes);
  t.true(memoryStats('cuda:0').cachedBytes >= 4 * (1 << 20));
  emptyCache('cuda:0');
  t.is(memoryStats('cuda:0').cachedBytes, 0);
});
