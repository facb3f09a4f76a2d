import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createModel, entryValues, exportIResNet, foldBatchNorm, FoldedIResNet, IResNet, loadCheckpoint, noGrad, ops, randn, readSafetensors, tensor, tidy, Module } from '../ts';
import { importOnnx, onnxStateDict } from '../ts/export/onnx-import';
import { OnnxGraph } from '../ts/export/onnx';
import { saveOnnx } from '../ts/export/iresnet-onnx';
import { openTeacher } from '../ts/train/teacher';
import type { Batch } from '../ts/data/loader';
import type { TrainingData } from '../ts/data/training-data';
import { relErr } from './helpers/tensors';

const FIX = path.join(__dirname, 'fixtures');

function embed(model: Module, x: Float32Array, n: number): Float32Array {
  return tidy(() => noGrad(() => model.forward(tensor(x, [n, 3, 112, 112])).toFloat32Array()));
}

function tmpFile(name: string, bytes: Uint8Array): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-onnx-'));
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

const io = readSafetensors(path.join(FIX, 'onnx_tiny_io.safetensors'));
const x = new Float32Array(entryValues(io.tensors.get('x')!));
const torchEmbedding = new Float32Array(entryValues(io.tensors.get('embedding')!));

for (const [file, kind, Class] of [
  ['onnx_tiny_torch2onnx.onnx', "torch2onnx's (BN fused into the convs, input 'data')", FoldedIResNet],
  ['onnx_tiny_keep_bn.onnx', 'an older export keeping every BN (float_data, initializers as inputs)', IResNet],
] as const) {
  test(`${kind}: the layout is read from the graph and the embeddings equal PyTorch's`, (t) => {
    const imp = importOnnx(path.join(FIX, file));
    t.true(imp.model instanceof Class);
    t.deepEqual(imp.config.layers, [1, 2, 1, 1]);
    t.deepEqual(imp.config.widths, [8, 16, 16, 16]);
    t.is(imp.config.embedding, 32);
    t.is(imp.config.stride, 'second');
    t.false(imp.normalisesInput);
    const err = relErr(embed(imp.model, x, 2), torchEmbedding);
    t.true(err <= 1e-5, `relative error ${err.toExponential(2)}`);
    imp.model.dispose();
  });
}

test('a graph keeping every BN gives the state dict in arcface_torch names, to initialise a model; a fused one has none', (t) => {
  const { config, state } = onnxStateDict(path.join(FIX, 'onnx_tiny_keep_bn.onnx'));
  t.true(['layer2.1.bn1.weight', 'layer1.0.downsample.1.bias', 'features.bias', 'bn2.running_var'].every((k) => state.has(k)));
  const m = new IResNet(config).eval();
  m.loadStateDict(state);
  state.forEach((v) => v.dispose());
  const err = relErr(embed(m, x, 2), torchEmbedding);
  t.true(err <= 1e-5, `relative error ${err.toExponential(2)}`);
  m.dispose();
  t.throws(() => onnxStateDict(path.join(FIX, 'onnx_tiny_torch2onnx.onnx')), { message: /BatchNorms are fused into the convs/ });
});

test('our exports re-import identically: plain and folded, both stride placements', (t) => {
  for (const placement of ['second', 'first'] as const) {
    const m = createModel(placement === 'second' ? 'tiny' : 'tiny-first');
    loadCheckpoint(m, path.join(FIX, `iresnet_tiny_${placement}.safetensors`));
    m.eval();
    const f = foldBatchNorm(m);
    const xs = tidy(() => randn([2, 3, 112, 112]).toFloat32Array());
    for (const [what, model] of [['plain', m], ['folded', f]] as const) {
      const imp = importOnnx(tmpFile(`${what}.onnx`, exportIResNet(model).bytes));
      t.true(imp.normalisesInput, 'our graph normalises inside');
      t.is(imp.inputName, 'input');
      t.deepEqual(imp.config, { ...model.config, dropout: 0 });
      t.is(imp.model.constructor, model.constructor, `${placement} ${what}`);
      const ours = new Map([...model.namedParameters(), ...model.namedBuffers()].map(([k, v]) => [k, v.toFloat32Array()]));
      for (const [k, v] of [...imp.model.namedParameters(), ...imp.model.namedBuffers()]) t.deepEqual(v.toFloat32Array(), ours.get(k), `${placement} ${what}: ${k}`);
      t.deepEqual(embed(imp.model, xs, 2), embed(model, xs, 2), `${placement} ${what}: equal embeddings`);
      imp.model.dispose();
    }
    f.dispose();
    m.dispose();
  }
});

test('declared sizes are checked against the stored bytes before anything is allocated', (t) => {
  const g = new OnnxGraph();
  const x = g.input('input', ['batch', 3, 112, 112]);
  // 100000 × 100000 floats declared (40 GB), 4 bytes stored.
  g.output(g.node('Conv', [x, g.initializer('w', [100000, 100000, 3, 3], Float32Array.of(1))]), ['batch', 8]);
  const file = tmpFile('huge.onnx', g.encode());
  t.throws(() => importOnnx(file), { message: /'w': raw_data holds 4 bytes, \[100000, 100000, 3, 3\] FLOAT needs 360000000000/ });
});

test('what is not an IResNet is refused naming the node', (t) => {
  const g = new OnnxGraph();
  const x = g.input('input', ['batch', 3, 112, 112]);
  const c = g.node('Conv', [x, g.initializer('w', [8, 3, 3, 3], new Float32Array(8 * 27))], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] });
  g.output(g.node('Relu', [c]), ['batch', 8, 112, 112]);
  t.throws(() => importOnnx(tmpFile('relu.onnx', g.encode())), { message: /node 'Relu_1' \(Relu\): PRelu expected after the stem conv/ });
});

test("teacher: 'model.onnx' embeds with the imported network", (t) => {
  const teacher = openTeacher(path.join(FIX, 'onnx_tiny_torch2onnx.onnx'), undefined as unknown as TrainingData);
  const e = tidy(() => teacher.embed({ images: tensor(x, [2, 3, 112, 112]) } as Batch).toFloat32Array());
  const err = relErr(e, torchEmbedding);
  t.true(err <= 1e-5, `relative error ${err.toExponential(2)}`);
  teacher.dispose();
});

test('a NaN weight is refused naming the initializer', (t) => {
  const m = createModel('tiny').eval();
  const w = m.stages[1].layers[0].parameters()[0];
  ops.assign(w, tensor(new Float32Array(w.numel).fill(NaN), w.shape), 'test');
  const file = tmpFile('nan.onnx', exportIResNet(m).bytes);
  m.dispose();
  t.throws(() => importOnnx(file), { message: /initializer 'layer2\.0\.bn1\.weight' holds NaN \(value 0 of 8\): these weights are not usable/ });
});

test('a cut file is refused with an error naming it, never a crash or a huge allocation', (t) => {
  const bytes = fs.readFileSync(path.join(FIX, 'onnx_tiny_torch2onnx.onnx'));
  for (const at of [3, 100, 5000, bytes.length >> 1, bytes.length - 7]) {
    const file = tmpFile('cut.onnx', bytes.subarray(0, at));
    t.throws(() => importOnnx(file), { message: new RegExp(`^${file}`) }, `cut at ${at}`);
  }
});

test('external data reached through a link out of the model folder is refused', (t) => {
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-outside-'));
  const m = createModel('tiny').eval();
  const file = path.join(outside, 'm.onnx');
  saveOnnx(m, file, { externalData: 'always' });
  m.dispose();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-onnx-'));
  fs.copyFileSync(file, path.join(dir, 'm.onnx'));
  fs.symlinkSync(`${file}.data`, path.join(dir, 'm.onnx.data'));
  t.throws(() => importOnnx(path.join(dir, 'm.onnx')), { message: /links to .*, outside the model's folder/ });
});
