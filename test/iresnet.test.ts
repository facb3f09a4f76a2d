import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { closestModels, complexity, createModel, loadCheckpoint, modelConfig, MODELS, noGrad, saveCheckpoint, stateShapes, tidy, randn, readSafetensors, Tensor } from '../ts';
import { assertClose, relErr } from './helpers/tensors';
import { tensor, entryValues } from '../ts';

const fixture = (name: string) => path.join(__dirname, 'fixtures', name);
const io = readSafetensors(fixture('iresnet_tiny_io.safetensors'));
const ioTensor = (k: string): Tensor => {
  const e = io.tensors.get(k)!;
  return tensor(new Float32Array(entryValues(e)), e.shape);
};

test('r50 and r100 have the published size: 43.6M / 6.3 GMACs and 65.2M / 12.1 GMACs', (t) => {
  const r50 = complexity(MODELS.r50);
  const r100 = complexity(MODELS.r100);
  t.is((r50.params / 1e6).toFixed(1), '43.6');
  t.is((r50.macs / 1e9).toFixed(1), '6.3');
  t.is((r100.params / 1e6).toFixed(1), '65.2');
  t.is((r100.macs / 1e9).toFixed(1), '12.1');
});

test("the report's stride placement costs fewer MACs for the same weights", (t) => {
  const second = complexity(modelConfig('resnet240', { stride: 'second' }));
  const first = complexity(MODELS.resnet240);
  t.is(first.params, second.params);
  t.true(first.macs < second.macs, `${first.macs} vs ${second.macs}`);
});

test('the analytic parameter count matches the tensors of a built model', (t) => {
  for (const name of ['tiny', 'small']) {
    const m = createModel(name);
    const n = m.parameters().reduce((s, p) => s + p.numel, 0);
    t.is(n, complexity(m.config).params, name);
    m.dispose();
  }
});

for (const placement of ['second', 'first'] as const) {
  test(`a PyTorch IResNet checkpoint (${placement} placement) loads and gives the same embeddings`, (t) => {
    const model = createModel(placement === 'first' ? 'tiny-first' : 'tiny');
    loadCheckpoint(model, fixture(`iresnet_tiny_${placement}.safetensors`));
    tidy(() => {
      const x = ioTensor('x');
      model.eval();
      assertClose(t, noGrad(() => model.forward(x)), ioTensor(`${placement}.eval`), 'eval embeddings');
      model.train();
      assertClose(t, noGrad(() => model.forward(x)), ioTensor(`${placement}.train`), 'train-mode embeddings');
    });
    model.dispose();
  });
}

test('our state dict has exactly the names and shapes of the PyTorch one', (t) => {
  const model = createModel('tiny');
  const file = readSafetensors(fixture('iresnet_tiny_second.safetensors'));
  const ours = [...stateShapes(model)].map(([k, s]) => `${k} [${s.join(',')}]`).sort();
  const theirs = [...file.tensors].map(([k, e]) => `${k} [${e.shape.join(',')}]`).sort();
  t.deepEqual(ours, theirs);
  model.dispose();
});

test('save then load reproduces the model, running statistics and batch counters included', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-ckpt-'));
  const a = createModel('tiny');
  tidy(() => noGrad(() => a.forward(randn([2, 3, 112, 112])))); // moves running stats, counts a batch
  saveCheckpoint(a, path.join(dir, 'a.safetensors'), { model: 'tiny' });
  const b = createModel('tiny');
  t.deepEqual(loadCheckpoint(b, path.join(dir, 'a.safetensors')), { format: 'pt', model: 'tiny' });
  t.is(b.bn1.numBatchesTracked, 1);
  tidy(() => {
    const x = randn([2, 3, 112, 112]);
    a.eval();
    b.eval();
    t.is(relErr(a.forward(x).toFloat32Array(), b.forward(x).toFloat32Array()), 0);
  });
  a.dispose();
  b.dispose();
});

test('a checkpoint of another architecture is refused, listing the differences', (t) => {
  const model = createModel('small');
  const err = t.throws(() => loadCheckpoint(model, fixture('iresnet_tiny_second.safetensors')));
  t.regex(err!.message, /does not fit the model/);
  t.regex(err!.message, /conv1\.weight: shape \[8, 3, 3, 3\] in the file, \[16, 3, 3, 3\] in the model/);
  t.regex(err!.message, /missing layer2\.1\.bn1\.weight \[32\]/);
  model.dispose();
});

test('an unknown model name gets the closest known ones and the list; a wrong input shape names both', (t) => {
  t.throws(() => createModel('r51'), { message: /unknown model 'r51': did you mean r50\? known models are r18, r34, r50, r100, r200, resnet120, .*, each also as NAME-moe/ });
  t.deepEqual(closestModels('r240'), ['resnet240'], 'the report’s ResNet240 by its arcface_torch-style short name');
  t.deepEqual(closestModels('ResNet1.2K'), ['resnet1.2k'], 'case does not matter');
  t.deepEqual(closestModels('R200'), ['r200', 'resnet200'], 'the old ambiguous name offers both strides');
  t.deepEqual(closestModels('tiny_moe'), ['tiny-moe']);
  t.deepEqual(closestModels('mobilefacenet'), [], 'nothing close: no guess');
  const m = createModel('tiny');
  tidy(() => t.throws(() => m.forward(randn([1, 3, 96, 96])), { message: 'IResNet: expected input [N, 3, 112, 112], got [1, 3, 96, 96]' }));
  m.dispose();
});
