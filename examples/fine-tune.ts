// Fine-tune: train a few steps, then start a new run from those weights on other identities,
// with a new classifier and the backbone at a tenth of its rate: `npx tsx fine-tune.ts [STEPS]`.
// Both runs verify on the new identities' pairs: before and after fine-tuning.
import { resolveConfig, train, writeSyntheticDataset } from 'maskfr';

async function main(steps: number): Promise<void> {
  const faces = writeSyntheticDataset('faces', { identities: 30, perIdentity: 12, heldOut: 20, pairs: 200, seed: 1, quality: 90 });
  // Seed 2: other faces than seed 1's.
  const other = writeSyntheticDataset('faces-other', { identities: 20, perIdentity: 12, heldOut: 20, pairs: 200, seed: 2, quality: 90 });
  const common = { network: 'small', steps, batchSize: 32, warmupSteps: Math.floor(steps / 10), verification: [other.bin], verifyEvery: 0, logEvery: Math.max(1, Math.floor(steps / 5)) };
  const first = await train(resolveConfig({ ...common, data: faces.rec, output: 'runs/pretrain' }), { overwrite: true });
  first.model.dispose();
  const tuned = await train(
    resolveConfig({ ...common, data: other.rec, output: 'runs/fine-tune', init: { weights: first.weights!, backboneLrScale: 0.1 } }),
    { overwrite: true },
  );
  const pct = (r: typeof first) => `${(100 * r.verification[0].accuracy).toFixed(1)}%`;
  console.log(`new identities: ${pct(first)} before, ${pct(tuned)} after ${tuned.step} steps of fine-tuning; weights in ${tuned.weights}`);
}

main(Number(process.argv[2] ?? 100)).catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
