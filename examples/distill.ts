// Distil a `tiny` student from a `small` teacher: `npx tsx distill.ts [STEPS]`. The teacher
// trains first (or use any weights you have); the student trains with the convex
// CosFace + angular-distillation objective, its embedding sized as the teacher's.
import { modelConfig, resolveConfig, train, writeSyntheticDataset } from 'maskfr';

async function main(steps: number): Promise<void> {
  const data = writeSyntheticDataset('faces', { identities: 30, perIdentity: 12, heldOut: 20, pairs: 200, seed: 1, quality: 90 });
  const common = { data: data.rec, steps, batchSize: 32, warmupSteps: Math.floor(steps / 10), verification: [data.bin], verifyEvery: 0, logEvery: Math.max(1, Math.floor(steps / 5)) };
  const teacher = await train(resolveConfig({ ...common, network: 'small', output: 'runs/teacher' }), { overwrite: true });
  teacher.model.dispose();
  const student = await train(
    resolveConfig({
      ...common,
      network: 'tiny',
      embeddingSize: modelConfig('small').embedding,
      output: 'runs/student',
      teacher: { network: 'small', weights: teacher.weights! },
      kd: { form: 'l2', lambda: { kind: 'constant', value: 0.9 } },
    }),
    { overwrite: true },
  );
  const pct = (r: typeof student) => `${(100 * r.verification[0].accuracy).toFixed(1)}%`;
  console.log(`teacher ${pct(teacher)}, distilled student ${pct(student)} after ${student.step} steps; student weights in ${student.weights}`);
}

main(Number(process.argv[2] ?? 100)).catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
