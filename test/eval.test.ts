import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  at, createModel, entryValues, evaluateMaskedFaces, openTrainingData, readSafetensors, saveCheckpoint, tenFoldAccuracy, verifyScores, writeReport, writeSyntheticDataset,
} from '../ts';
import { native } from '../ts/native';

const fx = readSafetensors(path.join(__dirname, 'fixtures', 'eval.safetensors'));
const values = (name: string) => [...entryValues(fx.tensors.get(name)!)];

test('operating points agree with sklearn roc_curve (strict rule) on random scores with ties', (t) => {
  const levels = values('roc.levels');
  const r = verifyScores(Float32Array.from(values('roc.genuine')), Float32Array.from(values('roc.impostor')), { fmrs: levels });
  t.is(r.genuine, 400);
  t.is(r.impostors, 5000);
  const [tar, th] = [values('roc.tar'), values('roc.threshold')];
  r.levels.forEach((l, i) => {
    t.is(l.tar, tar[i], `TAR at FMR ${levels[i]}`);
    t.is(Math.fround(l.threshold), Math.fround(th[i]), `threshold at FMR ${levels[i]}`);
    t.is(l.falseMatchesAllowed, Math.floor(levels[i] * 5000));
    t.true(l.exact);
  });
});

test('a hand-computed case, and levels too fine for the set are flagged', (t) => {
  const r = verifyScores(Float32Array.of(0.2, 0.5, 0.9), Float32Array.of(0.1, 0.3, 0.6, 0.7), { fmrs: [0.1, 0.25, 0.5] });
  t.deepEqual(r.levels.map((l) => [l.tar, Math.fround(l.threshold), l.falseMatchesAllowed]), [
    [1 / 3, Math.fround(0.9), 0],
    [1 / 3, Math.fround(0.7), 1],
    [2 / 3, Math.fround(0.5), 2],
  ]);
  t.is(at(r, 0.25).fnmr, 1 - 1 / 3);
  t.throws(() => at(r, 1e-5), { message: /no level at FMR 0.00001/ });
  t.throws(() => verifyScores(Float32Array.of(NaN), Float32Array.of(0)), { message: /scores must be finite/ });
});

test('10-fold accuracy matches insightface on a fixture', (t) => {
  const issame = values('tenfold.issame').map((v) => v === 1);
  const r = tenFoldAccuracy(values('tenfold.distances'), issame);
  const accs = values('tenfold.accuracy');
  const mean = accs.reduce((s, v) => s + v, 0) / 10;
  t.true(Math.abs(r.accuracy - mean) < 1e-12, `${r.accuracy} vs ${mean}`);
  t.true(Math.abs(r.std - Math.sqrt(accs.reduce((s, v) => s + (v - mean) ** 2, 0) / 10)) < 1e-12);
  t.true(Math.abs(r.threshold - values('tenfold.threshold').reduce((s, v) => s + v, 0) / 10) < 1e-9);
});

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-eval-'));
const data = writeSyntheticDataset(path.join(root, 'data'), { identities: 6, perIdentity: 5, heldOut: 4, pairs: 20, seed: 9, quality: 90 });

test('probe masks are a pure function of (seed, image index), whatever the batching', (t) => {
  const ds = openTrainingData(data.rec);
  const imgs = [0, 1, 2].map((i) => ds.sample(i).image);
  const mask = { style: 'mixed', seed: 3, first: 0 };
  const all = native.decodeFaces(imgs, 112, false, 'x', mask).toFloat32();
  const last = native.decodeFaces([imgs[2]], 112, false, 'x', { ...mask, first: 2 }).toFloat32();
  const plain = native.decodeFaces([imgs[2]], 112, false, 'x').toFloat32();
  const per = 3 * 112 * 112;
  t.deepEqual([...all.subarray(2 * per)], [...last]);
  const changed = plain.filter((v, i) => Math.abs(v - last[i]) > 0.1).length;
  t.true(changed > 0.08 * per, `the mask covers ${((100 * changed) / per).toFixed(1)}% of the values`);
  t.throws(() => native.decodeFaces(imgs, 112, false, 'x', { ...mask, style: 'scarf' }), { message: /style 'scarf', expected mixed, template, renderer or held-out/ });
});

test('the MFR / SFR report: pair counts, flagged levels, JSON + HTML + PNG', (t) => {
  const model = createModel('tiny');
  const r = evaluateMaskedFaces(model, openTrainingData(data.rec), { model: 'tiny', mask: { style: 'held-out', seed: 1 } });
  t.is(r.images, 30);
  t.is(r.identities, 6);
  t.deepEqual([r.sfr.genuine, r.sfr.impostors], [6 * 10, (30 * 29) / 2 - 60]);
  t.deepEqual([r.mfr.genuine, r.mfr.impostors], [6 * 5 * 4, 30 * 29 - 120]);
  t.false(r.headline.measurable, '750 impostor pairs cannot measure FMR 1e-5');
  // The MFR challenge's leaderboard score: 0.25·TAR@Mask(1e-4) + 0.75·TAR@MR-All(1e-6).
  t.deepEqual([r.challenge.mask, r.challenge.all], [at(r.mfr, 1e-4).tar, at(r.sfr, 1e-6).tar]);
  t.is(r.challenge.score, 0.25 * r.challenge.mask + 0.75 * r.challenge.all);
  t.false(r.challenge.measurable);
  t.is(at(r.mfr, 1e-1).falseMatchesAllowed, 75);
  t.true(r.mfr.levels.every((l) => l.tar >= 0 && l.tar <= 1 && Number.isFinite(l.fnmr)));
  const out = writeReport(path.join(root, 'report'), r);
  const html = fs.readFileSync(out.html, 'utf8');
  t.regex(html, /<svg[\s\S]*<polyline[\s\S]*MFR: masked probe vs unmasked gallery/);
  t.regex(html, /too few impostor pairs to measure this level/);
  t.regex(html, /MFR challenge score \(ICCV21 leaderboard: 0\.25·TAR@Mask \+ 0\.75·TAR@MR-All\): <b>[\d.]+<\/b>/);
  t.is((html.match(/<circle /g) ?? []).length, 2, 'the two challenge points are marked');
  const png = native.decodeImage(fs.readFileSync(out.png), 'roc.png');
  t.deepEqual([png.width, png.height], [640, 440]);
  t.deepEqual(JSON.parse(fs.readFileSync(out.json, 'utf8')).mfr.genuine, 120);
  model.dispose();
});

test('maskfr eval: a .bin set (10-fold) and a labelled set (report)', (t) => {
  const model = createModel('tiny');
  const weights = path.join(root, 'tiny.safetensors');
  saveCheckpoint(model, weights);
  model.dispose();
  const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
  const run = (...a: string[]) => spawnSync(process.execPath, [cli, 'eval', '--model', 'tiny', '--weights', weights, ...a], { encoding: 'utf8' });
  const bin = run('--data', data.bin);
  t.is(bin.status, 0, bin.stderr);
  t.regex(bin.stdout, /^verify: [\d.]+% ± [\d.]+ over 20 pairs \(10-fold; mean threshold [\d.]+\)/);
  const rep = run('--data', data.rec, '--report', path.join(root, 'cli-report'), '--mask', 'template');
  t.is(rep.status, 0, rep.stderr);
  t.regex(rep.stdout, /30 images, 6 identities, probes masked 'template'/);
  t.regex(rep.stdout, /FNMR @ FMR 1e-5: MFR [\d.]+%, SFR [\d.]+% \(too few impostor pairs to measure\)/);
  t.regex(rep.stdout, /MFR challenge score: [\d.]+ = 0\.25 × MFR TAR@1e-4 [\d.]+% \+ 0\.75 × SFR TAR@1e-6 [\d.]+% \(too few impostor pairs to measure\)/);
  t.regex(rep.stdout, /1e-6 .* <1: not measurable/);
  t.true(fs.existsSync(path.join(root, 'cli-report', 'roc.png')));
  const bad = run('--data', data.rec, '--mask', 'scarf');
  t.is(bad.status, 1);
  t.regex(bad.stderr, /--mask must be one of mixed, template, renderer, held-out, got scarf/);
});
