import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { createModel, exportIResNet, foldBatchNorm, full, loadCheckpoint, noGrad, ops, randUniform, tensor, tidy, IResNet, FoldedIResNet, Tensor } from '../ts';
import { saveOnnx } from '../ts/export/iresnet-onnx';
import { importOnnx } from '../ts/export/onnx-import';
import { readOnnx } from '../ts/export/onnx-read';
import { checkMfrKit, mfrKitProblems } from '../ts/export/mfr-kit';
import { relErr } from './helpers/tensors';

async function compare(t: import('ava').ExecutionContext, model: IResNet | FoldedIResNet, what: string): Promise<string[]> {
  const onnx = exportIResNet(model);
  const session = await ort.InferenceSession.create(onnx.bytes);
  t.deepEqual(session.inputNames, ['input']);
  t.deepEqual(session.outputNames, ['embedding']);
  for (const n of [1, 3]) {
    // RGB in [0, 255]; ours takes the normalised image.
    const [pixels, ours] = tidy(() => {
      const x: Tensor = randUniform([n, 3, 112, 112], { low: 0, high: 255 });
      const y = noGrad(() => model.forward(ops.addChannel(ops.scale(x, 1 / 127.5), full([3], -1))));
      return [x.toFloat32Array(), y.toFloat32Array()];
    });
    const res = await session.run({ input: new ort.Tensor('float32', pixels, [n, 3, 112, 112]) });
    const theirs = res.embedding.data as Float32Array;
    const err = relErr(theirs, ours);
    t.true(err <= 1e-4, `${what}, batch ${n}: relative error ${err.toExponential(2)}`);
  }
  return onnx.opTypes;
}

test('the exported IResNet runs in onnxruntime and matches our forward, plain and folded', async (t) => {
  const m = createModel('tiny');
  loadCheckpoint(m, path.join(__dirname, 'fixtures', 'iresnet_tiny_second.safetensors'));
  m.eval();
  const plain = await compare(t, m, 'plain');
  t.true(plain.includes('BatchNormalization'));
  const folded = foldBatchNorm(m);
  const ops2 = await compare(t, folded, 'folded');
  t.false(ops2.includes('BatchNormalization'), 'the folded graph has no BatchNormalization node');
  folded.dispose();
  m.dispose();
});

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-onnx-'));
}

test('over the threshold the weights go to <name>.onnx.data: onnxruntime loads it with the same outputs, and it re-imports', async (t) => {
  const m = createModel('tiny');
  loadCheckpoint(m, path.join(__dirname, 'fixtures', 'iresnet_tiny_second.safetensors'));
  m.eval();
  const dir = tmpDir();
  const inline = saveOnnx(m, path.join(dir, 'inline.onnx'), { above: 1e9 });
  t.false(inline.external);
  t.deepEqual(inline.files, [path.join(dir, 'inline.onnx')]);
  const ext = saveOnnx(m, path.join(dir, 'ext.onnx'), { above: 10_000 });
  t.true(ext.external);
  t.deepEqual(ext.files, [path.join(dir, 'ext.onnx'), path.join(dir, 'ext.onnx.data')]);
  t.true(fs.statSync(path.join(dir, 'ext.onnx')).size < 20_000, 'the weights left the model file');
  t.deepEqual(fs.readdirSync(dir).sort(), ['ext.onnx', 'ext.onnx.data', 'inline.onnx'], 'no temporary file left');
  const pixels = tidy(() => randUniform([2, 3, 112, 112], { low: 0, high: 255 }).toFloat32Array());
  const run = async (file: string) => {
    const s = await ort.InferenceSession.create(file);
    const out = (await s.run({ input: new ort.Tensor('float32', pixels, [2, 3, 112, 112]) })).embedding.data as Float32Array;
    await s.release();
    return out;
  };
  t.deepEqual(await run(path.join(dir, 'ext.onnx')), await run(path.join(dir, 'inline.onnx')));
  const imp = importOnnx(path.join(dir, 'ext.onnx'));
  const x = tidy(() => randUniform([2, 3, 112, 112], { low: -1, high: 1 }).toFloat32Array());
  const embed = (model: IResNet | FoldedIResNet) => tidy(() => noGrad(() => model.forward(tensor(x, [2, 3, 112, 112])).toFloat32Array()));
  t.deepEqual(embed(imp.model), embed(m));
  imp.model.dispose();
  m.dispose();
});

test('external data outside the model folder is refused', (t) => {
  const m = createModel('tiny').eval();
  const dir = tmpDir();
  saveOnnx(m, path.join(dir, 'a.onnx'), { externalData: 'always' });
  m.dispose();
  const sub = path.join(dir, 'sub');
  fs.mkdirSync(sub);
  // The same model one folder down, its data name (same length) pointing to a file up there.
  fs.copyFileSync(path.join(dir, 'a.onnx.data'), path.join(dir, 'aaaaaaaa'));
  const bytes = fs.readFileSync(path.join(dir, 'a.onnx'));
  const patched = Buffer.from(bytes.toString('latin1').split('a.onnx.data').join('../aaaaaaaa'), 'latin1');
  fs.writeFileSync(path.join(sub, 'b.onnx'), patched);
  t.throws(() => importOnnx(path.join(sub, 'b.onnx')), { message: /outside the model's folder/ });
});

test("the MFR kit's rules: ours pass, and the kit finds our normalisation by the names Mul/Sub among the first nodes", (t) => {
  const m = createModel('tiny').eval();
  const dir = tmpDir();
  const file = path.join(dir, 'm.onnx');
  saveOnnx(m, file);
  m.dispose();
  const f = readOnnx(file);
  // onnx_helper.py feeds raw 0–255 pixels only when it sees these names in graph.node[:8].
  const first = f.nodes.slice(0, 8);
  t.true(first.some((n) => n.name.startsWith('Mul')) && first.some((n) => n.name.startsWith('Sub')), first.map((n) => n.name).join(', '));
  t.deepEqual(mfrKitProblems(f), []);
  const renamed = { ...f, nodes: f.nodes.map((n) => ({ ...n, name: `n_${n.name}` })) };
  t.regex(mfrKitProblems(renamed).join('\n'), /would feed it \(x − 127\.5\)\/127\.5/);
  const big = { ...f, outputs: [...f.outputs, { ...f.outputs[0], name: 'masked_embedding' }] };
  t.deepEqual(mfrKitProblems(big, 2 ** 31).map((p) => p.split(' ')[0]), ['the', '2']);
  const wide = createModel('tiny', { embedding: 1024 }).eval();
  saveOnnx(wide, file);
  wide.dispose();
  t.regex(checkMfrKit(file).join('\n'), /1024-d feature, over the kit's 512/);
});
