import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Loader, photometricAugment, photometricProblem, PHOTOMETRIC_DEFAULTS, resolveConfig, writeSyntheticDataset } from '../ts';
import { syntheticFace } from '../ts/data/synthetic-faces';

const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
const base = { network: 'tiny', data: 'x.rec', output: 'out', steps: 1 };

test("the photometric section is checked field by field, naming the field; the defaults are insightface's recipe", (t) => {
  t.deepEqual(PHOTOMETRIC_DEFAULTS.brightness, { probability: 1, range: [0.875, 1.125] });
  t.deepEqual(PHOTOMETRIC_DEFAULTS.jpeg, { probability: 0.5, quality: [2, 20] });
  t.deepEqual(PHOTOMETRIC_DEFAULTS.erasing, { probability: 0, scale: [0.02, 0.33], ratio: [0.3, 3.3], fill: [128, 128, 128] });
  const ok = { blur: { probability: 0.2 }, erasing: { probability: 0.5, fill: 'random' as const }, jpeg: { quality: [30, 90] as [number, number] } };
  t.deepEqual(resolveConfig({ ...base, photometric: ok }).photometric, ok);
  t.is(resolveConfig(base).photometric, undefined, 'absent: no photometric augmentation');
  t.is(photometricProblem({}), null);
  const wrong: [unknown, RegExp][] = [
    [{ hue: {} }, /photometric has no op 'hue' \(known: brightness, contrast, saturation, blur, jpeg, erasing\)/],
    [{ blur: { probabilty: 0.2 } }, /photometric\.blur has no field 'probabilty' \(known: probability, sigma\)/],
    [{ brightness: { probability: 1.5 } }, /photometric\.brightness\.probability must be a number in \[0, 1\], got 1\.5/],
    [{ contrast: { probability: NaN } }, /photometric\.contrast\.probability must be a number in \[0, 1\], got NaN/],
    [{ saturation: { range: [1.2, 0.8] } }, /photometric\.saturation\.range must be \[min, max\] factors/],
    [{ blur: { sigma: [0, 1] } }, /photometric\.blur\.sigma must be \[min, max\] sigmas with 0 < min ≤ max ≤ 20, got \[0, 1\]/],
    [{ blur: { sigma: 2 } }, /photometric\.blur\.sigma must be \[min, max\], got 2/],
    [{ jpeg: { quality: [2.5, 10] } }, /photometric\.jpeg\.quality must hold integers in \[0, 100\]/],
    [{ jpeg: { quality: [0, 10] } }, /photometric\.jpeg\.quality must be \[min, max\] qualities with 1 ≤ min/],
    [{ erasing: { fill: 'rand' } }, /photometric\.erasing\.fill must be 'random' or \[r, g, b\], got "rand"/],
    [{ erasing: { fill: [0, 300, 0] } }, /photometric\.erasing\.fill must hold integers in \[0, 255\]/],
    [{ erasing: { scale: [0.1, 1.5] } }, /photometric\.erasing\.scale must be \[min, max\] shares of the area/],
    [[], /photometric must be an object of ops/],
  ];
  for (const [section, message] of wrong) {
    t.regex(photometricProblem(section) ?? 'accepted', message, JSON.stringify(section));
    t.throws(() => resolveConfig({ ...base, photometric: section }, 'r.json'), { message: /^r\.json:\n {2}photometric must be a valid section \(photometric/ });
  }
});

test('photometricAugment: the same seed gives the same pixels; probabilities 0 give the face back', (t) => {
  const face = Buffer.from(syntheticFace(3, 1, 0));
  const a = photometricAugment(face, 112, 112, { seed: 7 });
  t.deepEqual(photometricAugment(face, 112, 112, { seed: 7 }), a);
  t.notDeepEqual(a, face, 'the colour jitter applies to every sample by default');
  t.notDeepEqual(photometricAugment(face, 112, 112, { seed: 8 }), a);
  const off = { probability: 0 };
  const none = { brightness: off, contrast: off, saturation: off, blur: off, jpeg: off, erasing: off };
  t.deepEqual(photometricAugment(face, 112, 112, { seed: 7, options: none }), face);
  t.throws(() => photometricAugment(face, 111, 112), { message: /photometric: 37632 bytes for a 111x112 RGB image/ });
  t.throws(() => photometricAugment(face, 112, 112, { options: { blur: { probability: 2 } } }), { message: /photometric\.blur\.probability must be a number in \[0, 1\], got 2/ });
});

test("the loader's photometric option jitters after the masks, deterministically, and changes nothing when absent", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-photometric-'));
  const { rec } = writeSyntheticDataset(dir, { identities: 4, perIdentity: 4, heldOut: 2, pairs: 0, seed: 2, quality: 90 });
  const epoch = async (o: Parameters<typeof Loader.fromRecord>[1]) => {
    const out: { images: number[]; masked: boolean[] }[] = [];
    for await (const b of Loader.fromRecord(rec, o).epoch(1)) {
      out.push({ images: Array.from(b.images.toFloat32Array()), masked: b.masked });
      b.images.dispose();
    }
    return out;
  };
  const o = { batch: 4, seed: 5, maskProbability: 0.5 };
  const plain = await epoch({ ...o, threads: 1 });
  t.deepEqual(await epoch({ ...o, threads: 2, photometric: undefined }), plain);
  const jittered = await epoch({ ...o, threads: 1, photometric: { blur: { probability: 0.5 }, erasing: { probability: 0.5 } } });
  t.deepEqual(await epoch({ ...o, threads: 3, photometric: { blur: { probability: 0.5 }, erasing: { probability: 0.5 } } }), jittered, 'whatever the threads');
  t.notDeepEqual(jittered, plain);
  t.deepEqual(jittered.map((b) => b.masked), plain.map((b) => b.masked), 'the same samples masked');
  t.throws(() => Loader.fromRecord(rec, { ...o, photometric: { jpeg: { quality: [50, 20] } } }), { message: /photometric\.jpeg\.quality must be \[min, max\] qualities/ });
});

test('maskfr augment --preview --photometric writes plain, masked and jittered faces; --config takes a recipe\'s section', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-aug-photometric-'));
  const out = path.join(dir, 'p.png');
  const r = run('augment', '--preview', '2', out, '--photometric');
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /2 faces, each plain, masked, and masked with photometric augmentation/);
  t.is(fs.readFileSync(out).subarray(1, 4).toString(), 'PNG');
  const recipe = path.join(dir, 'r.json');
  fs.writeFileSync(recipe, JSON.stringify({ ...base, photometric: { erasing: { probability: 1 } } }));
  t.is(run('augment', '--preview', '2', out, '--photometric', '--config', recipe).status, 0);
  fs.writeFileSync(recipe, JSON.stringify(base));
  t.regex(run('augment', '--preview', '2', out, '--photometric', '--config', recipe).stderr, /augment: .*r\.json has no photometric section to preview/);
  t.regex(run('augment', '--preview', '2', out, '--config', recipe).stderr, /augment: --config is for --photometric/);
});
