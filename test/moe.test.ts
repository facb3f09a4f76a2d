import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import {
  complexity, createModel, embedFlipped, exportIResNet, foldBatchNorm, full, IResNetMoE, loadCheckpoint, MODELS, noGrad, openTrainingData, ops, randn, randUniform, readSafetensors, resolveConfig, tidy, train, stateShapes, writeSyntheticDataset,
} from '../ts';
import { assertClose, relErr } from './helpers/tensors';

const createMoE = (name: string) => {
  const m = createModel(name);
  if (!(m instanceof IResNetMoE)) throw new Error(`${name} is not an MoE`);
  return m;
};

test('every table model has its MoE twin: the same trunk, one more head', (t) => {
  t.true(MODELS['resnet240-moe'].moe && !MODELS.resnet240.moe);
  const plain = complexity(MODELS.r50);
  const moe = complexity(MODELS['r50-moe']);
  t.is(moe.macs, plain.macs, 'each image runs through one head');
  t.is(moe.params - plain.params, 2 * 512 + (512 * 7 * 7 * 512 + 512) + 2 * 512, 'a second BN2d, fc and BN1d');
  t.false(createModel('tiny') instanceof IResNetMoE);
});

test('the MoE routes each sample to the head its mask flag picks', (t) => {
  const m = createMoE('tiny-moe').eval();
  tidy(() =>
    noGrad(() => {
      const x = randn([5, 3, 112, 112]);
      const flags = [true, false, false, true, false];
      const y = m.forward(x, flags);
      const h = m.trunk(x);
      const masked = m.masked.forward(h);
      const plain = m.head.forward(h);
      for (let i = 0; i < 5; i++) {
        const want = flags[i] ? masked : plain;
        assertClose(t, ops.indexRows(y, [i]), ops.indexRows(want, [i]), `row ${i}`);
      }
      assertClose(t, m.forward(x, [0, 0, 0, 0, 0]), plain, 'all unmasked');
      assertClose(t, m.forward(x), plain, 'no flags: unmasked by default');
      m.maskedByDefault = true;
      assertClose(t, m.forward(x), masked, 'no flags: masked when maskedByDefault');
    }),
  );
  m.dispose();
});

test('training the MoE sends gradients only to the heads that saw samples', (t) => {
  const m = createMoE('tiny-moe');
  tidy(() => {
    ops.sum(ops.mul(m.forward(randn([4, 3, 112, 112]), [1, 1, 1, 1]), randn([4, 64]))).backward();
  });
  t.truthy(m.masked.fc.weight.grad, 'the masked head learns');
  t.is(m.head.fc.weight.grad, null, 'the unmasked head saw no sample');
  t.truthy(m.conv1.weight.grad, 'the shared trunk learns');
  t.true([...stateShapes(m).keys()].includes('masked.fc.weight'));
  t.throws(() => m.forward(randn([2, 3, 112, 112]), [true]), { message: 'IResNetMoE: 1 mask flags for a batch of 2' });
  t.throws(() => foldBatchNorm(m), { message: /an MoE model's two heads are not folded/ });
  m.dispose();
});

test('the exported MoE is one graph with two outputs, each matching our forward under its flag', async (t) => {
  const m = createMoE('tiny-moe').eval();
  const session = await ort.InferenceSession.create(exportIResNet(m).bytes);
  t.deepEqual(session.inputNames, ['input']);
  t.deepEqual(session.outputNames, ['embedding', 'masked_embedding']);
  const [pixels, unmasked, masked] = tidy(() => {
    const x = randUniform([3, 3, 112, 112], { low: 0, high: 255 });
    const normalised = ops.addChannel(ops.scale(x, 1 / 127.5), full([3], -1));
    return noGrad(() => [x.toFloat32Array(), m.forward(normalised, [0, 0, 0]).toFloat32Array(), m.forward(normalised, [1, 1, 1]).toFloat32Array()]);
  });
  const res = await session.run({ input: new ort.Tensor('float32', pixels, [3, 3, 112, 112]) });
  t.true(relErr(res.embedding.data as Float32Array, unmasked) <= 1e-4, 'embedding: the unmasked head');
  t.true(relErr(res.masked_embedding.data as Float32Array, masked) <= 1e-4, 'masked_embedding: the masked head');
  t.true(relErr(masked, unmasked) > 1e-2, 'the two heads differ');
  await session.release();
  m.dispose();
});

test("a tiny MoE trains from a config, each sample's head picked by the loader's mask flag", async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-moe-train-'));
  const data = writeSyntheticDataset(path.join(root, 'data'), { identities: 6, perIdentity: 6, heldOut: 4, pairs: 20, seed: 4, quality: 90 });
  const run = async (maskProbability: number) => {
    const cfg = resolveConfig({
      network: 'tiny-moe', data: data.rec, output: path.join(root, `p${maskProbability}`), steps: 3, batchSize: 8, warmupSteps: 1, logEvery: 1, checkpointEvery: 0, loaderThreads: 1, maskProbability, verification: [data.bin],
    });
    const r = await train(cfg, { quiet: true });
    t.true(r.model instanceof IResNetMoE && Number.isFinite(r.loss));
    t.is(r.verification.length, 1, 'verification embeds through the unmasked head');
    r.model.dispose();
    return readSafetensors(r.weights!).tensors;
  };
  // The same seed: the same initial weights and batches; only the masking differs.
  const none = await run(0);
  const half = await run(0.5);
  const same = (name: string) => Buffer.from(none.get(name)!.data).equals(Buffer.from(half.get(name)!.data));
  t.false(same('masked.fc.weight'), 'with masked samples the masked head trains; without, it keeps its initial weights');
  t.false(same('fc.weight'), 'the unmasked head trains on different samples');
  const reloaded = createModel('tiny-moe');
  t.notThrows(() => loadCheckpoint(reloaded, path.join(root, 'p0.5', 'model.safetensors')));
  reloaded.dispose();
});

test('evaluation embeds masked probes with the masked head and the gallery with the default one', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-moe-eval-'));
  const data = openTrainingData(writeSyntheticDataset(path.join(root, 'data'), { identities: 3, perIdentity: 2, heldOut: 2, pairs: 4, seed: 5, quality: 90 }).rec);
  const images = Array.from({ length: data.length }, (_, i) => data.sample(i).image);
  const m = createMoE('tiny-moe');
  const mask = { style: 'mixed' as const, seed: 3 };
  const probes = (maskedByDefault: boolean) => {
    m.maskedByDefault = maskedByDefault;
    return embedFlipped(m, images, { mask });
  };
  t.deepEqual(probes(false), probes(true), 'masked probes take the masked head whatever the default');
  m.maskedByDefault = false;
  const gallery = embedFlipped(m, images);
  m.maskedByDefault = true;
  t.notDeepEqual(embedFlipped(m, images), gallery, 'unmasked images take the default head');
  m.dispose();
});
