// Train a small IResNet on synthetic faces from a script: `npx tsx train-synthetic.ts [STEPS]`
// (or ts-node). The same trainer as `maskfr train`; everything runs on the CPU.
import { resolveConfig, train, writeSyntheticDataset } from 'maskfr';

async function main(steps: number): Promise<void> {
  const data = writeSyntheticDataset('faces', { identities: 30, perIdentity: 12, heldOut: 20, pairs: 200, seed: 1, quality: 90 });
  const run = await train(
    resolveConfig({
      network: 'small',
      data: data.rec,
      output: 'runs/small',
      steps,
      batchSize: 32,
      warmupSteps: Math.floor(steps / 10),
      verification: [data.bin],
      verifyEvery: 0,
      logEvery: Math.max(1, Math.floor(steps / 5)),
    }),
    // A second run of the script starts over instead of being refused.
    { overwrite: true },
  );
  const v = run.verification[0];
  console.log(`held-out verification after ${run.step} steps: ${(100 * v.accuracy).toFixed(1)}% ± ${(100 * v.std).toFixed(1)}; weights in ${run.weights}`);
}

main(Number(process.argv[2] ?? 100)).catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
