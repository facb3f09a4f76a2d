// `npm run demo`: the main job. Writes the bundled synthetic faces (cached), trains a small
// IResNet with the CosFace head (s 64, m 0.4) to tell the training identities apart, then
// verifies held-out identities by embedding cosine and compares with raw pixels. CPU by default; environment overrides:
// MASKFR_STEPS, MASKFR_IDENTITIES, MASKFR_PAIRS, MASKFR_DATA (the cache folder).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  clipGradNorm, COSFACE, createModel, Loader, manualSeed, MarginSoftmax, noGrad, polyLr, readVerificationBin, SGD, tensor, tidy,
  writeSyntheticDataset, IResNet,
} from '..';
import { native } from '../native';

const STEPS = Number(process.env.MASKFR_STEPS ?? 200);
const IDENTITIES = Number(process.env.MASKFR_IDENTITIES ?? 100);
const PAIRS = Number(process.env.MASKFR_PAIRS ?? 600);
const BATCH = 64;
const dir = process.env.MASKFR_DATA ?? path.join(os.tmpdir(), `maskfr-synth-${IDENTITIES}-${PAIRS}`);

function dataset(): { rec: string; bin: string } {
  const rec = path.join(dir, 'train.rec');
  const bin = path.join(dir, 'verify.bin');
  if (fs.existsSync(rec) && fs.existsSync(bin)) return { rec, bin };
  console.log(`writing the synthetic faces to ${dir} …`);
  return writeSyntheticDataset(dir, { identities: IDENTITIES, perIdentity: 20, heldOut: 50, pairs: PAIRS, seed: 1, quality: 95 });
}

/** Accuracy of `score ≥ threshold` with the threshold picked on one half of the pairs and
 *  measured on the other (both ways, averaged): an honest small-sample estimate. */
function splitAccuracy(scores: number[], same: boolean[]): number {
  const idx = scores.map((_, i) => i);
  const halves = [idx.filter((i) => i < scores.length / 2), idx.filter((i) => i >= scores.length / 2)];
  const acc = (set: number[], th: number) => set.filter((i) => scores[i] >= th === same[i]).length / set.length;
  const best = (set: number[]) => set.map((i) => scores[i]).reduce((b, th) => (acc(set, th) > acc(set, b) ? th : b), 0);
  return (acc(halves[1], best(halves[0])) + acc(halves[0], best(halves[1]))) / 2;
}

const cosine = (a: Float32Array | Float64Array, b: Float32Array | Float64Array) => {
  let [ab, aa, bb] = [0, 0, 0];
  for (let i = 0; i < a.length; i++) [ab, aa, bb] = [ab + a[i] * b[i], aa + a[i] * a[i], bb + b[i] * b[i]];
  return ab / Math.sqrt(aa * bb);
};

function pixels(img: Buffer): Float32Array {
  const d = native.decodeImage(img, 'verify.bin').data;
  const out = new Float32Array(3 * 112 * 112);
  for (let i = 0; i < 112 * 112; i++) for (let c = 0; c < 3; c++) out[c * 112 * 112 + i] = d[i * 3 + c] / 127.5 - 1;
  return out;
}

function verify(model: IResNet, bin: string): { model: number; raw: number } {
  const v = readVerificationBin(bin);
  const imgs = v.images.map(pixels);
  model.eval();
  const emb: Float32Array[] = [];
  for (let i = 0; i < imgs.length; i += 50) {
    const chunk = imgs.slice(i, i + 50);
    const flat = new Float32Array(chunk.length * imgs[0].length);
    chunk.forEach((p, k) => flat.set(p, k * p.length));
    const e = tidy(() => noGrad(() => model.forward(tensor(flat, [chunk.length, 3, 112, 112])).toFloat32Array()));
    const d = e.length / chunk.length;
    for (let k = 0; k < chunk.length; k++) emb.push(e.subarray(k * d, (k + 1) * d));
  }
  model.train();
  const pairs = v.issame.map((_, i) => [2 * i, 2 * i + 1]);
  return {
    model: splitAccuracy(pairs.map(([a, b]) => cosine(emb[a], emb[b])), v.issame),
    raw: splitAccuracy(pairs.map(([a, b]) => cosine(imgs[a], imgs[b])), v.issame),
  };
}

async function main(): Promise<void> {
  manualSeed(2021);
  const { rec, bin } = dataset();
  const model = createModel('small');
  const classifier = new MarginSoftmax(model.config.embedding, IDENTITIES, COSFACE);
  const params = [...model.parameters(), ...classifier.parameters()];
  const opt = new SGD(params, { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
  const before = verify(model, bin);
  console.log(`verification of held-out identities before training: ${(100 * before.model).toFixed(1)}% (raw pixels: ${(100 * before.raw).toFixed(1)}%)`);
  const loader = Loader.fromRecord(rec, { batch: BATCH, seed: 7 });
  const schedule = { base: 0.1, warmupSteps: Math.max(1, Math.min(20, Math.floor(STEPS / 10))), totalSteps: STEPS };
  const t0 = performance.now();
  let step = 0;
  for (let epoch = 0; step < STEPS; epoch++) {
    for await (const b of loader.epoch(epoch)) {
      if (step >= STEPS) {
        b.images.dispose();
        continue;
      }
      opt.lr = polyLr(schedule, step);
      const loss = tidy(() => {
        opt.zeroGrad();
        const l = classifier.loss(model.forward(b.images), b.labels);
        l.backward();
        clipGradNorm(model.parameters(), 5); // the backbone only, as arcface_torch
        opt.step();
        return l.item();
      });
      b.images.dispose();
      step++;
      if (step % 25 === 0 || step === 1 || step === STEPS) {
        const secs = (performance.now() - t0) / 1000;
        console.log(`step ${String(step).padStart(4)}/${STEPS}  loss ${loss.toFixed(3)}  lr ${opt.lr.toFixed(4)}  ${((step * BATCH) / secs).toFixed(0)} img/s`);
      }
    }
  }
  const after = verify(model, bin);
  console.log(`verification of held-out identities after ${STEPS} steps: ${(100 * after.model).toFixed(1)}% (raw pixels: ${(100 * after.raw).toFixed(1)}%)`);
  if (loader.skipped.length > 0) console.log(`skipped ${loader.skipped.length} corrupt records`);
  opt.dispose();
  classifier.dispose();
  model.dispose();
}

main().catch((e: unknown) => {
  console.error(`maskfr demo: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
