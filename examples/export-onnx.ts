// Fold and export trained weights to ONNX, then check the file: the MFR challenge kit's rules,
// and onnxruntime's embeddings against our own forward. `npx tsx export-onnx.ts [WEIGHTS]`
// (default: what train-synthetic.ts wrote; needs `npm i onnxruntime-node`). The graph takes
// RGB pixels in [0, 255], `[batch, 3, 112, 112]`.
import * as ort from 'onnxruntime-node';
import { checkMfrKit, createModel, foldBatchNorm, full, loadCheckpoint, noGrad, ops, randUniform, saveOnnx, tidy } from 'maskfr';

async function main(weights: string): Promise<void> {
  const model = createModel('small');
  loadCheckpoint(model, weights);
  model.eval();
  const folded = foldBatchNorm(model); // every BatchNorm folded into the convs and the fc
  // Weights past 2 GiB go to small.onnx.data beside it (saved.files), as the kit expects.
  const saved = saveOnnx(folded, 'small.onnx');
  const problems = checkMfrKit('small.onnx', saved.files.slice(1));
  if (problems.length > 0) throw new Error(`small.onnx: the MFR challenge kit would refuse it: ${problems.join('; ')}`);

  const n = 2;
  const [pixels, ours] = tidy(() => {
    const x = randUniform([n, 3, 112, 112], { low: 0, high: 255 });
    // Ours takes the normalised image, (x − 127.5) / 127.5; the ONNX graph does it inside.
    const y = noGrad(() => folded.forward(ops.addChannel(ops.scale(x, 1 / 127.5), full([3], -1))));
    return [x.toFloat32Array(), y.toFloat32Array()];
  });
  const session = await ort.InferenceSession.create('small.onnx');
  const out = await session.run({ input: new ort.Tensor('float32', pixels, [n, 3, 112, 112]) });
  const theirs = out.embedding.data as Float32Array;
  const err = Math.max(...ours.map((v, i) => Math.abs(v - theirs[i]))) / Math.max(...ours.map(Math.abs));
  console.log(`small.onnx: ${saved.bytes} bytes, ${saved.opTypes.length} nodes, passes the MFR kit's checks; onnxruntime vs ours: relative error ${err.toExponential(1)}`);
  if (!(err < 1e-4)) throw new Error(`small.onnx: onnxruntime differs from our forward (relative error ${err})`);
  [folded, model].forEach((m) => m.dispose());
}

main(process.argv[2] ?? 'runs/small/model.safetensors').catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
