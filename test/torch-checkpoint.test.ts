// PyTorch checkpoints (test/fixtures/make_torch_fixtures.py, upstream torch.save): every
// layout loads into the IResNet and gives PyTorch's embeddings to 1e-5 relative; hostile
// files are refused naming the file and what was wrong; our writer's files load in torch
// (proved by the fixture script on a committed file, and here when python has torch).

import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createModel, entryValues, loadCheckpoint, noGrad, readSafetensors, readTorchCheckpoint, readWeightsFile, saveCheckpoint, tensor, tidy, writeTorchCheckpoint } from '../ts';
import { COMMANDS } from '../ts/cli/main';
import { relErr } from './helpers/tensors';

const fixture = (name: string) => path.join(__dirname, 'fixtures', name);
const io = readSafetensors(fixture('torch_pico_io.safetensors'));
const pico = () => createModel('tiny', { widths: [4, 8, 8, 8], embedding: 8 });
const tmpDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-torch-'));

/** Eval-mode embeddings of the fixture batch (x = u8/128 − 1, exact in f32 on both sides). */
function embeddings(file: string): Float32Array {
  const model = pico();
  loadCheckpoint(model, file);
  model.eval();
  const u8 = io.tensors.get('u8')!;
  const x = Float32Array.from(entryValues(u8), (v) => v / 128 - 1);
  const out = tidy(() => noGrad(() => model.forward(tensor(x, u8.shape))).toFloat32Array());
  model.dispose();
  return out;
}

const expected = (k: string) => new Float32Array(entryValues(io.tensors.get(k)!));

for (const [file, want] of [
  ['torch_pico_f32.pt', 'f32.eval'],
  ['torch_pico_f16.pt', 'f16.eval'],
  ['torch_pico_bf16.pt', 'bf16.eval'],
  ['torch_pico_ddp_nested.pt', 'f32.eval'],
  ['torch_pico_views.pt', 'f32.eval'],
  ['torch_pico_maskfr.pt', 'f32.eval'],
]) {
  test(`${file} loads and gives PyTorch's embeddings (1e-5 relative)`, (t) => {
    const err = relErr(embeddings(fixture(file)), expected(want));
    t.true(err <= 1e-5, `relative error ${err.toExponential(2)}`);
  });
}

test('a DDP checkpoint nested under state_dict says what reading did', (t) => {
  t.deepEqual(readTorchCheckpoint(fixture('torch_pico_ddp_nested.pt')).notes, ["the state dict sat under 'state_dict'", "DDP's 'module.' prefix was stripped from every name"]);
});

test('saveCheckpoint to a .pt writes torch.save format, and it loads back exactly', (t) => {
  const dir = tmpDir();
  const file = path.join(dir, 'model.pt');
  const a = pico();
  loadCheckpoint(a, fixture('torch_pico_bf16.pt'));
  saveCheckpoint(a, file);
  t.is(readTorchCheckpoint(file).tensors.size, 115);
  const b = pico();
  loadCheckpoint(b, file);
  const values = (m: typeof a) => [...m.namedParameters(), ...m.namedBuffers()].map(([k, v]) => [k, [...v.toFloat32Array()]]);
  t.deepEqual(values(b), values(a));
  fs.rmSync(dir, { recursive: true });
});

test('.pth is dispatched like .pt; other names stay safetensors', (t) => {
  const dir = tmpDir();
  const pth = path.join(dir, 'model.pth');
  fs.copyFileSync(fixture('torch_pico_f32.pt'), pth);
  t.true(relErr(embeddings(pth), expected('f32.eval')) <= 1e-5);
  const renamed = path.join(dir, 'model.weights');
  fs.copyFileSync(fixture('torch_pico_f32.pt'), renamed);
  t.throws(() => readWeightsFile(renamed), { message: /not a valid safetensors file/ });
  fs.rmSync(dir, { recursive: true });
});

for (const [file, global] of [
  ['torch_evil_system.pt', 'posix.system'],
  ['torch_evil_eval.pt', '__builtin__.eval'], // pickle protocol 2's name for builtins.eval
]) {
  test(`${file} (torch.save of a ${global} call) is refused without running it`, (t) => {
    const err = t.throws(() => loadCheckpoint(pico(), fixture(file)));
    t.true(err.message.startsWith(fixture(file)), err.message);
    t.regex(err.message, new RegExp(`refuses global '${global.replace('.', '\\.')}'`));
    t.false(fs.existsSync('/tmp/maskfr-pwned'));
  });
}

test('a legacy (pre-1.6) torch.save file is refused saying how to re-save it', (t) => {
  t.throws(() => loadCheckpoint(pico(), fixture('torch_legacy.pt')), { message: /legacy \(pre-1\.6\).*torch\.save\(torch\.load\(f, weights_only=True\), f2\)/ });
});

test('a .pt holding NaN is refused like a safetensors one, the model left as it was', (t) => {
  const dir = tmpDir();
  const file = path.join(dir, 'nan.pt');
  const st = readTorchCheckpoint(fixture('torch_pico_f32.pt'));
  const w = st.tensors.get('fc.weight')!;
  new Float32Array(w.data.buffer, w.data.byteOffset, w.data.byteLength / 4)[5] = NaN;
  writeTorchCheckpoint(file, st.tensors);
  const model = pico();
  const fc = new Map(model.namedParameters()).get('fc.weight')!;
  const before = fc.toFloat32Array();
  t.throws(() => loadCheckpoint(model, file), { message: /'fc\.weight' holds NaN \(value 5 of/ });
  t.deepEqual(fc.toFloat32Array(), before);
  fs.rmSync(dir, { recursive: true });
});

test('our writer reproduces the committed torch_pico_maskfr.pt byte for byte (the file the fixture script loads in torch)', (t) => {
  const dir = tmpDir();
  const out = path.join(dir, 'torch_pico_maskfr.pt');
  writeTorchCheckpoint(out, readTorchCheckpoint(fixture('torch_pico_f32.pt')).tensors);
  t.true(fs.readFileSync(out).equals(fs.readFileSync(fixture('torch_pico_maskfr.pt'))));
  fs.rmSync(dir, { recursive: true });
});

test('maskfr convert goes .pt → safetensors → .pt and keeps every tensor', async (t) => {
  const dir = tmpDir();
  const [st, pt] = [path.join(dir, 'w.safetensors'), path.join(dir, 'w.pt')];
  const log = console.log;
  const lines: string[] = [];
  console.log = (s: string) => lines.push(s);
  try {
    t.is(await COMMANDS.convert.run({ command: 'convert', positional: [fixture('torch_pico_ddp_nested.pt'), st], options: new Map(), flags: new Set(), lists: new Map(), after: null }), 0);
    t.is(await COMMANDS.convert.run({ command: 'convert', positional: [st, pt], options: new Map(), flags: new Set(), lists: new Map(), after: null }), 0);
  } finally {
    console.log = log;
  }
  t.regex(lines[0], /^wrote .*w\.safetensors: \d+ tensors, .*sat under 'state_dict'; DDP's 'module\.' prefix was stripped/);
  t.is(readSafetensors(st).metadata.format, 'pt');
  const a = readTorchCheckpoint(fixture('torch_pico_f32.pt'));
  const b = readTorchCheckpoint(pt);
  t.deepEqual([...b.tensors.keys()], [...a.tensors.keys()]);
  for (const [k, e] of a.tensors) t.true(Buffer.from(b.tensors.get(k)!.data).equals(Buffer.from(e.data)), k);
  fs.rmSync(dir, { recursive: true });
});

/** A python with torch: $PYTHON, else python3; null (and the reason) without one. */
function torchPython(): { python: string } | { why: string } {
  const python = process.env.PYTHON ?? 'python3';
  const r = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  return r.status === 0 ? { python } : { why: `${python} cannot import torch (${(r.error?.message ?? r.stderr.trim().split('\n').pop()) || 'no reason given'})` };
}

test('a checkpoint saved here (safetensors → .pt) loads with torch.load(weights_only=True) into the PyTorch IResNet', (t) => {
  const py = torchPython();
  if ('why' in py) {
    t.log(`skipped: ${py.why}; set PYTHON to a python with torch (the committed torch_pico_maskfr.pt is proved by make_torch_fixtures.py)`);
    t.pass();
    return;
  }
  const dir = tmpDir();
  const model = pico();
  loadCheckpoint(model, fixture('torch_pico_bf16.pt'));
  const [st, pt] = [path.join(dir, 'ours.safetensors'), path.join(dir, 'ours.pt')];
  saveCheckpoint(model, st);
  writeTorchCheckpoint(pt, readSafetensors(st).tensors);
  const script = [
    'import sys, torch',
    `sys.path.insert(0, ${JSON.stringify(path.join(__dirname, 'fixtures'))})`,
    'from torch_iresnet import IResNet',
    'from safetensors.torch import load_file',
    'm = IResNet("second", (1, 1, 1, 1), (4, 8, 8, 8), 8).eval()',
    `m.load_state_dict(torch.load(${JSON.stringify(pt)}, weights_only=True), strict=True)`,
    `u8 = load_file(${JSON.stringify(fixture('torch_pico_io.safetensors'))})["u8"]`,
    'with torch.no_grad(): y = m(u8.float() / 128 - 1)',
    `e = load_file(${JSON.stringify(fixture('torch_pico_io.safetensors'))})["bf16.eval"]`,
    'print(((y - e).abs().max() / e.abs().max()).item())',
  ].join('\n');
  const r = spawnSync(py.python, ['-c', script], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const err = Number(r.stdout.trim());
  t.true(err <= 1e-5, `torch's embeddings from our file: relative error ${err}`);
  model.dispose();
  fs.rmSync(dir, { recursive: true });
});
