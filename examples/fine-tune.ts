// Fine-tune: train a few steps, then start a new run from those weights on other identities,
// with a new classifier: `npx tsx fine-tune.ts [STEPS]`. `train` starts from fresh weights, so
// the second run is a short loop of its own on the library's parts.
import { COSFACE, MarginSoftmax, SGD, createModel, loadCheckpoint, openTrainingData, resolveConfig, saveCheckpoint, tidy, train, verify, writeSyntheticDataset } from 'maskfr';

async function main(steps: number): Promise<void> {
  const faces = writeSyntheticDataset('faces', { identities: 30, perIdentity: 12, heldOut: 20, pairs: 200, seed: 1, quality: 90 });
  const first = await train(
    resolveConfig({ network: 'small', data: faces.rec, output: 'runs/pretrain', steps, batchSize: 32, warmupSteps: Math.floor(steps / 10), logEvery: Math.max(1, Math.floor(steps / 5)) }),
    { overwrite: true },
  );
  first.model.dispose();

  // The new run: the pretrained backbone, a classifier for the new identities, a lower rate.
  const other = writeSyntheticDataset('faces-other', { identities: 20, perIdentity: 12, heldOut: 20, pairs: 200, seed: 2, quality: 90 });
  const data = openTrainingData(other.rec);
  const model = createModel('small');
  loadCheckpoint(model, first.weights!);
  const before = verify(model, other.bin).accuracy;
  const head = new MarginSoftmax(model.config.embedding, data.classes, COSFACE);
  const optimizers = [new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 }), new SGD(head.parameters(), { lr: 0.1, momentum: 0.9 })];
  const loader = data.loader({ batch: 32, seed: 7, maskProbability: 0.35 });
  let step = 0;
  for (let epoch = 0; step < steps; epoch++) {
    for await (const b of loader.epoch(epoch)) {
      const loss = tidy(() => {
        const l = head.loss(model.forward(b.images, b.masked), b.labels);
        l.backward();
        return l.item();
      });
      b.images.dispose();
      optimizers.forEach((o) => (o.step(), o.zeroGrad()));
      if (++step % Math.max(1, Math.floor(steps / 5)) === 0) console.log(`fine-tune step ${step}: loss ${loss.toFixed(3)}`);
      if (step === steps) break;
    }
  }
  model.eval();
  saveCheckpoint(model, 'runs/fine-tuned.safetensors', { network: 'small', from: first.weights! });
  const after = verify(model, other.bin).accuracy;
  console.log(`new identities: ${(100 * before).toFixed(1)}% before, ${(100 * after).toFixed(1)}% after ${step} steps of fine-tuning; weights in runs/fine-tuned.safetensors`);
  [model, head, ...optimizers].forEach((x) => x.dispose());
}

main(Number(process.argv[2] ?? 100)).catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
