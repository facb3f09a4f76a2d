// Pretrained starts (a recipe's `init`): a PyTorch .pt, a run's checkpoint or an ONNX file
// loaded by name into the new network; frozen stages untouched by training; the backbone's
// LR scale in the size of its update; differences refused, listed, or allowed; --resume
// leaves the weights to its checkpoint. And an ONNX teacher named by its path.

import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createModel, entryValues, exportIResNet, IResNet, loadCheckpoint, noGrad, readSafetensors, readWeightsFile, resolveConfig, saveCheckpoint, stateShapes, tensor, tidy, train, TrainConfig, writeSyntheticDataset } from '../ts';
import { loadInit } from '../ts/train/init';
import { relErr } from './helpers/tensors';

const FIX = path.join(__dirname, 'fixtures');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-init-'));
const data = writeSyntheticDataset(path.join(root, 'data'), { identities: 4, perIdentity: 4, heldOut: 2, pairs: 20, seed: 11, quality: 90 });
const base = (name: string, extra: Partial<TrainConfig> = {}): TrainConfig => ({
  network: 'tiny',
  data: data.rec,
  output: path.join(root, name),
  steps: 2,
  batchSize: 8,
  checkpointEvery: 0,
  loaderThreads: 1,
  ...extra,
});

/** Every parameter and buffer of the model, by name. */
const valuesOf = (m: IResNet) => new Map([...m.namedParameters(), ...m.namedBuffers()].map(([k, t]) => [k, t.toFloat32Array()]));
/** Every F32 tensor of a weights file, by name. */
const fileValues = (file: string) => new Map([...readWeightsFile(file).tensors].filter(([, e]) => e.dtype === 'F32').map(([k, e]) => [k, new Float32Array(entryValues(e))]));
const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** A tiny run's weights (another seed than the runs below, trained, so its BN statistics are
 *  not the initial ones) as a .pt; and one with a 32-d embedding. */
const sources = (async () => {
  const pt = path.join(root, 'source.pt');
  const a = await train(resolveConfig(base('source', { seed: 99 })), { quiet: true });
  saveCheckpoint(a.model, pt);
  a.model.dispose();
  const b = await train(resolveConfig(base('source-32', { seed: 98, embeddingSize: 32 })), { quiet: true });
  b.model.dispose();
  return { pt, d32: b.weights! };
})();

test('a PyTorch-written .pt (arcface_torch names) loads by name and gives PyTorch\'s embeddings', (t) => {
  const pico = createModel('tiny', { widths: [4, 8, 8, 8], embedding: 8 });
  const r = loadInit(pico, { weights: path.join(FIX, 'torch_pico_ddp_nested.pt') });
  t.is(r.loaded.length, stateShapes(pico).size, "every tensor of the state dict");
  t.deepEqual([r.missing, r.unexpected, r.mismatched], [[], [], []]);
  t.true(r.notes.some((n) => /DDP's 'module\.' prefix was stripped/.test(n)));
  const io = readSafetensors(path.join(FIX, 'torch_pico_io.safetensors'));
  const u8 = io.tensors.get('u8')!;
  const x = Float32Array.from(entryValues(u8), (v) => v / 128 - 1);
  pico.eval();
  const out = tidy(() => noGrad(() => pico.forward(tensor(x, u8.shape)).toFloat32Array()));
  t.true(relErr(out, new Float32Array(entryValues(io.tensors.get('f32.eval')!))) <= 1e-5);
  pico.dispose();
});

test('a file of another network is refused, listing the differences; allowMismatch loads the rest and keeps those as initialised', async (t) => {
  const { d32 } = await sources;
  const m = createModel('tiny');
  const fresh = valuesOf(m);
  const e = t.throws(() => loadInit(m, { weights: d32 }));
  t.regex(e.message, /^init: .*model\.safetensors does not fit the network \(IResNet \[1, 1, 1, 1\] × \[8, 16, 16, 32\], 64-d\): \d+ tensors fit, 6 differ:/);
  t.regex(e.message, /\n {2}fc\.weight: shape \[32, (\d+)\] in the file, \[64, \1\] in the model\n/);
  t.regex(e.message, /\n {2}features\.running_var: shape \[32\] in the file, \[64\] in the model\n/);
  t.regex(e.message, /allowMismatch: true starts anyway/);
  t.true(same(valuesOf(m).get('conv1.weight')!, fresh.get('conv1.weight')!), 'a refused file changes nothing');
  const r = loadInit(m, { weights: d32, allowMismatch: true });
  t.deepEqual(r.mismatched.map((x) => x.name), ['fc.weight', 'fc.bias', 'features.weight', 'features.bias', 'features.running_mean', 'features.running_var']);
  const now = valuesOf(m);
  const file = fileValues(d32);
  t.true(same(now.get('fc.weight')!, fresh.get('fc.weight')!), 'the mismatched fc keeps its initialisation');
  t.true(same(now.get('layer2.0.conv1.weight')!, file.get('layer2.0.conv1.weight')!), 'the rest is the file\'s');
  t.false(same(now.get('layer2.0.conv1.weight')!, fresh.get('layer2.0.conv1.weight')!));
  m.dispose();
  const pico = t.throws(() => loadInit(createModel('tiny'), { weights: path.join(FIX, 'torch_pico_f32.pt') }));
  t.regex(pico.message, /conv1\.weight: shape \[4, 3, 3, 3\] in the file, \[8, 3, 3, 3\] in the model[\s\S]*… and \d+ more/);
});

test('an ONNX file keeping its BatchNorms initialises by name; a torch2onnx (fused) export is refused, saying what to use', async (t) => {
  const src = createModel('tiny');
  loadCheckpoint(src, (await sources).pt);
  const file = path.join(root, 'tiny.onnx');
  fs.writeFileSync(file, exportIResNet(src.eval()).bytes);
  const m = createModel('tiny');
  const r = loadInit(m, { weights: file });
  t.deepEqual([r.missing, r.unexpected, r.mismatched], [[], [], []]);
  const [a, b] = [valuesOf(src), valuesOf(m)];
  for (const [k, v] of a) t.true(relErr(b.get(k)!, v) <= 1e-6, k);
  [src, m].forEach((x) => x.dispose());
  const fused = path.join(FIX, 'onnx_tiny_torch2onnx.onnx');
  t.throws(() => loadInit(createModel('tiny'), { weights: fused }), {
    message: /^init: .*onnx_tiny_torch2onnx\.onnx: its BatchNorms are fused into the convs .*\. Start from the weights it was exported from \(arcface_torch's backbone\.pth or model\.pt\), or use it as a teacher \(teacher: '.*onnx_tiny_torch2onnx\.onnx'\)$/,
  });
});

test('freeze: 2 keeps the stem, layer1 and layer2 bit-identical (BN statistics too) while the rest trains; init.json reports the load', async (t) => {
  const { pt } = await sources;
  const cfg = resolveConfig(base('frozen', { steps: 3, init: { weights: pt, freeze: 2 } }));
  const r = await train(cfg, { quiet: true });
  const src = fileValues(pt);
  const after = valuesOf(r.model);
  const frozen = [...after.keys()].filter((k) => /^(conv1|bn1|prelu|layer1|layer2)\./.test(k));
  const trained = [...after.keys()].filter((k) => /^(layer3|layer4|fc)\./.test(k) && !/running|num_batches/.test(k));
  t.true(frozen.length >= 20 && trained.length >= 10);
  for (const k of frozen) t.true(same(after.get(k)!, src.get(k)!), `${k} is frozen`);
  t.true(trained.filter((k) => k.endsWith('conv1.weight') || k === 'fc.weight').every((k) => !same(after.get(k)!, src.get(k)!)), 'the unfrozen convs and fc train');
  const report = JSON.parse(fs.readFileSync(path.join(cfg.output, 'init.json'), 'utf8')) as { weights: string; loaded: string[]; missing: string[]; unexpected: string[]; mismatched: unknown[] };
  t.is(report.weights, pt);
  t.is(report.loaded.length, readWeightsFile(pt).tensors.size);
  t.deepEqual([report.missing, report.unexpected, report.mismatched], [[], [], []]);
  r.model.dispose();
});

test("backboneLrScale scales the backbone's first update (0.1×), the classifier's stays the same", async (t) => {
  const { pt } = await sources;
  const run = async (name: string, scale?: number) => {
    const cfg = resolveConfig(base(name, { steps: 1, init: { weights: pt, ...(scale === undefined ? {} : { backboneLrScale: scale }) } }));
    const r = await train(cfg, { quiet: true });
    const v = valuesOf(r.model);
    r.model.dispose();
    const ck = path.join(cfg.output, 'checkpoint');
    const head = readSafetensors(path.join(ck, fs.readdirSync(ck).find((f) => f.startsWith('head-'))!));
    return { v, head: [...head.tensors].map(([k, e]) => [k, Buffer.from(e.data).toString('base64')]) };
  };
  const [full, tenth] = [await run('lr-full'), await run('lr-tenth', 0.1)];
  const src = fileValues(pt);
  for (const k of ['layer3.0.conv1.weight', 'fc.weight', 'prelu.weight']) {
    const delta = (v: Float32Array) => v.map((x, i) => x - src.get(k)![i]);
    const [df, dt] = [delta(full.v.get(k)!), delta(tenth.v.get(k)!)];
    const ratio = Math.hypot(...dt) / Math.hypot(...df);
    t.true(Math.abs(ratio - 0.1) < 1e-3, `${k}: update ratio ${ratio}`);
  }
  t.deepEqual(tenth.head, full.head, 'the classifier took the full LR in both');
});

test('--resume ignores init: the weights come from the checkpoint, the file is not read; frozen stages stay frozen', async (t) => {
  const { pt } = await sources;
  const moved = path.join(root, 'moved.pt');
  fs.copyFileSync(pt, moved);
  const cfg = resolveConfig(base('resumed', { steps: 2, init: { weights: moved, freeze: 1 } }));
  (await train(cfg, { quiet: true })).model.dispose();
  const report = fs.readFileSync(path.join(cfg.output, 'init.json'), 'utf8');
  fs.rmSync(moved);
  const r = await train({ ...cfg, steps: 4 }, { quiet: true, resume: true });
  t.is(r.step, 4);
  t.is(fs.readFileSync(path.join(cfg.output, 'init.json'), 'utf8'), report, 'the report of the start stays');
  const src = fileValues(pt);
  const after = valuesOf(r.model);
  for (const k of [...after.keys()].filter((x) => /^(conv1|bn1|prelu|layer1)\./.test(x))) t.true(same(after.get(k)!, src.get(k)!), `${k} is frozen`);
  r.model.dispose();
  // A new run (no --resume) reads it, and says so.
  await t.throwsAsync(train(resolveConfig(base('missing', { init: { weights: moved } })), { quiet: true }), { message: /moved\.pt/ });
});

test('init and a teacher path are checked in the config; an ONNX teacher distils by its path', async (t) => {
  const e = t.throws(() => resolveConfig(base('x', { init: { weights: '', freeze: 5, backboneLrScale: 2, bogus: 1 } as never, teacher: 'teacher.pt' })));
  t.regex(e.message, /init must be \{ weights: FILE, freeze\?: 0–4, backboneLrScale\?: \(0, 1\], allowMismatch\?: boolean \}, with weights a path \(\.pt, \.pth, \.safetensors or \.onnx\), freeze an integer in 0–4 \(the stem and that many stages\), backboneLrScale a number in \(0, 1\], no field 'bogus'/);
  t.regex(e.message, /teacher must be an ONNX file's path \(M\.onnx\), \{ network, weights \} or \{ embeddings \}, got "teacher\.pt"/);
  const onnx = path.join(FIX, 'onnx_tiny_torch2onnx.onnx');
  const cfg = resolveConfig(base('onnx-teacher', { embeddingSize: 32, teacher: onnx, kd: { lambda: { kind: 'constant', value: 0.5 } }, logEvery: 1 }));
  const r = await train(cfg, { quiet: true });
  r.model.dispose();
  const logged = fs.readFileSync(path.join(cfg.output, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kd?: number });
  t.true(logged.some((m) => typeof m.kd === 'number' && m.kd > 0), 'the teacher distils');
});
