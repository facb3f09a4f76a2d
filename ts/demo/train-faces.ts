// `npm run demo`: the main job, through the same trainer as `maskfr train`. Writes the
// bundled synthetic faces (cached), trains a `small` IResNet teacher with CosFace on
// mask-augmented faces and prints held-out verification as it rises, precomputes the
// teacher's embeddings, then trains a `tiny` student twice on the same budget — with the
// convex CosFace + angular-distillation objective and without — and compares them.
// `--json FILE` writes the figures; `--device cuda:0` (or `auto`) trains on a GPU and
// `--precision f16|bf16` in mixed precision (CPU and f32 by default). Environment overrides: MASKFR_STEPS (teacher),
// MASKFR_STUDENT_STEPS, MASKFR_IDENTITIES, MASKFR_PAIRS, MASKFR_DATA (the dataset cache),
// MASKFR_OUT (the runs' folder).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native } from '../native';
import { createModel, loadCheckpoint, openTrainingData, readVerificationBin, resolveConfig, train, TrainConfig, VerificationResult, writeSyntheticDataset, writeTeacherEmbeddings } from '..';
import { tenFoldAccuracy } from '../eval/verification';

const STEPS = Number(process.env.MASKFR_STEPS ?? 200);
const STUDENT_STEPS = Number(process.env.MASKFR_STUDENT_STEPS ?? STEPS);
const IDENTITIES = Number(process.env.MASKFR_IDENTITIES ?? 100);
const PAIRS = Number(process.env.MASKFR_PAIRS ?? 600);
const dataDir = process.env.MASKFR_DATA ?? path.join(os.tmpdir(), `maskfr-synthetic-faces-${IDENTITIES}-${PAIRS}`);
const out = process.env.MASKFR_OUT ?? fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-demo-runs-'));
const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const jsonFile = arg('--json');
const device = arg('--device') ?? 'cpu';
const precision = (arg('--precision') ?? 'f32') as 'f32' | 'f16' | 'bf16';

function dataset(): { rec: string; bin: string } {
  const rec = path.join(dataDir, 'train.rec');
  const bin = path.join(dataDir, 'verify.bin');
  if (fs.existsSync(rec) && fs.existsSync(bin)) return { rec, bin };
  console.log(`writing the synthetic faces to ${dataDir} …`);
  return writeSyntheticDataset(dataDir, { identities: IDENTITIES, perIdentity: 20, heldOut: 50, pairs: PAIRS, seed: 1, quality: 95 });
}

/** The baseline any model must beat: 10-fold accuracy of raw-pixel distances. */
function rawPixels(bin: string): number {
  const v = readVerificationBin(bin);
  const px = native.decodeFaces(v.images, 112, false, bin).toFloat32();
  const d = px.length / v.images.length;
  const unit = (i: number) => {
    const row = px.subarray(i * d, (i + 1) * d);
    const n = Math.hypot(...row);
    return row.map((x) => x / n);
  };
  const dist = v.issame.map((_, i) => {
    const [a, b] = [unit(2 * i), unit(2 * i + 1)];
    return a.reduce((s, x, j) => s + (x - b[j]) ** 2, 0);
  });
  return tenFoldAccuracy(dist, v.issame).accuracy;
}

const pct = (v: VerificationResult) => `${(100 * v.accuracy).toFixed(1)}% ± ${(100 * v.std).toFixed(1)}`;

async function run(name: string, c: Omit<TrainConfig, 'data' | 'output'>, data: string, bin: string, quiet = false) {
  const t0 = performance.now();
  const cfg = resolveConfig({ data, output: path.join(out, name), verification: [bin], logEvery: 25, checkpointEvery: 0, device, precision, ...c });
  const r = await train(cfg, { quiet });
  const seconds = (performance.now() - t0) / 1000;
  r.model.dispose();
  return { network: c.network, steps: r.step, verification: r.verification[0], seconds, imagesPerSecond: r.imagesPerSecond, weights: r.weights! };
}

async function main(): Promise<void> {
  const { rec, bin } = dataset();
  const raw = rawPixels(bin);
  console.log(`raw-pixel baseline on held-out pairs: ${(100 * raw).toFixed(1)}%`);
  const recipe = { batchSize: 64, lr: 0.1, warmupSteps: Math.max(1, Math.min(20, Math.floor(STEPS / 10))), verifyEvery: Math.max(1, Math.floor(STEPS / 4)) };
  console.log(`teacher: small IResNet, CosFace, 35% of faces masked, ${STEPS} steps (on ${resolveConfig({ network: 'small', data: rec, output: out, steps: 1, device }).device}${precision === 'f32' ? '' : `, ${precision}`})`);
  const teacher = await run('teacher', { network: 'small', steps: STEPS, ...recipe }, rec, bin);
  console.log(`teacher: ${pct(teacher.verification)} after ${teacher.steps} steps (${teacher.seconds.toFixed(0)} s, ${teacher.imagesPerSecond.toFixed(0)} img/s)`);

  const embeddings = path.join(out, 'teacher-embeddings.safetensors');
  const teacherModel = createModel('small');
  loadCheckpoint(teacherModel, teacher.weights);
  writeTeacherEmbeddings(teacherModel, openTrainingData(rec), embeddings, { metadata: { network: 'small' } });
  teacherModel.dispose();
  const student = { network: 'tiny', embeddingSize: 128, steps: STUDENT_STEPS, ...recipe, verifyEvery: 0 };
  console.log(`students: tiny IResNet (embedding 128), ${STUDENT_STEPS} steps each, with and without distillation from the teacher`);
  // λ 0.9: CosFace's gradients (s = 64) are tens of times the angular loss's, so the convex
  // weight has to lean on the distillation term for it to count (λ 0.5 measured below no-KD).
  const kd = await run('student-kd', { ...student, teacher: { embeddings }, kd: { form: 'l2', lambda: { kind: 'constant', value: 0.9 } } }, rec, bin, true);
  const plain = await run('student', student, rec, bin, true);
  console.log(`student with KD:    ${pct(kd.verification)} (${kd.seconds.toFixed(0)} s)`);
  console.log(`student without KD: ${pct(plain.verification)} (${plain.seconds.toFixed(0)} s)`);
  const figures = { dataset: { identities: IDENTITIES, pairs: PAIRS }, rawPixels: raw, teacher, studentWithKd: kd, studentWithoutKd: plain };
  if (jsonFile !== undefined) fs.writeFileSync(jsonFile, JSON.stringify(figures, null, 2));
}

main().catch((e: unknown) => {
  console.error(`maskfr demo: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
