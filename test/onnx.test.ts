import test from 'ava';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { createModel, exportIResNet, foldBatchNorm, full, loadCheckpoint, noGrad, ops, randUniform, tidy, IResNet, FoldedIResNet, Tensor } from '../ts';
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
