// The CUDA device from TypeScript. Everywhere: asking for a GPU that is not there is a clear
// Error naming what is missing, and nothing already on the CPU is lost. With a GPU: tensors
// move both ways, ops and their gradients cross devices, memory is counted per device.

import test from 'ava';
import { Communicator, memoryStats, emptyCache, nn, ops, randn, setTf32, ShardedMarginSoftmax, synchronize, tensor, tf32, tidy, zeros } from '../ts';
import { gpuTest, noGpu } from './helpers/gpu';
import { relErr } from './helpers/tensors';

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

gpuTest('tensors and gradients cross between cpu and cuda:0', (t) => {
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

gpuTest('device memory is counted and cached per device', (t) => {
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

gpuTest("the sharded classifier's native step on cuda:0 equals the CPU's (chunks, sampling)", (t) => {
  const comm = Communicator.connect({ rank: 0, world: 1, localRank: 0, masterAddr: '127.0.0.1', masterPort: 0 });
  const labels = Int32Array.from([3, 49, 0, 17, 17, 8, 40, 41]);
  const run = (device: string) => {
    const head = new ShardedMarginSoftmax(comm, 32, 50, { seed: 4, chunk: 7, sampleRate: 0.3 }).to(device);
    const out = tidy(() => {
      const e = randn([8, 32], { seed: 5 }).requireGrad();
      const loss = head.loss(ops.to(e, device), labels, 3);
      t.is(loss.device, device);
      loss.backward();
      return { loss: loss.item(), ge: e.grad!.toFloat32Array(), gw: head.weight.grad!.toFloat32Array() };
    });
    head.dispose();
    return out;
  };
  const [cpu, gpu] = [run('cpu'), run('cuda:0')];
  t.true(relErr([gpu.loss], [cpu.loss]) <= 1e-5, `loss ${gpu.loss} vs ${cpu.loss}`);
  t.true(relErr(gpu.ge, cpu.ge) <= 1e-4, 'embedding gradient');
  t.true(relErr(gpu.gw, cpu.gw) <= 1e-4, 'centre gradient');
});

test("the TF32 policy starts at PyTorch's defaults and a change hands back the one it replaced", (t) => {
  t.deepEqual(tf32(), { convolutions: true, matmul: false });
  const before = setTf32({ convolutions: false });
  t.deepEqual(before, { convolutions: true, matmul: false });
  t.deepEqual(tf32(), { convolutions: false, matmul: false }, 'a field left out keeps its value');
  t.deepEqual(setTf32(before), { convolutions: false, matmul: false });
  t.deepEqual(tf32(), before);
});
