import test from 'ava';
import { spawnSync, SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createModel, embedFlipped, evaluateMaskedFaces, IResNetMoE, openTrainingData, saveCheckpoint, writeReport, writeSyntheticDataset } from '../ts';
import { native } from '../ts/native';
import { verifyCross } from '../ts/eval/one-to-one';
import { crossBreakdown, DrawnMask, MASK_KINDS, MIN_GENUINE, pairBreakdown } from '../ts/eval/breakdown';
import { readMaskSidecar, sidecarKeys, sidecarPath } from '../ts/eval/mask-sidecar';
import { embedMasked, verify } from '../ts/eval/verification';
import { readVerificationBin } from '../ts/data/verification-bin';
import { RecordDataset } from '../ts/data/recordio';

/** A small deterministic generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const LEAVES: DrawnMask[] = Object.entries(MASK_KINDS).flatMap(([synthesizer, kinds]) => kinds.map((kind) => ({ synthesizer, kind })));

test('per-group TAR and FAR at the protocol thresholds, recomputed from the scores and groups', (t) => {
  // Entries k/16 (|k| ≤ 5) in 8 dimensions: every score is a multiple of 1/256, exact in any
  // summation order, with many ties at the thresholds (≥, not >, is what is checked).
  const [n, d, r] = [90, 8, rng(11)];
  const row = () => Array.from({ length: d }, () => Math.floor(r() * 11 - 5) / 16);
  const probe = new Float32Array(n * d);
  const gallery = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    probe.set(row(), i * d);
    gallery.set(row(), i * d);
  }
  const labels = Int32Array.from({ length: n }, (_, i) => i % 9);
  const masks = Array.from({ length: n }, (_, i): DrawnMask => (i % 13 === 5 ? { synthesizer: null, kind: null } : LEAVES[Math.floor(r() * LEAVES.length)]));
  const o = { fmrs: [0.1, 0.02, 0.005, 1e-6] };
  const mfr = verifyCross(probe, gallery, labels, d, true, o);
  const b = crossBreakdown('test', masks, { probe, gallery, labels, dim: d, paired: true }, mfr.levels);
  const score = (i: number, j: number) => probe.subarray(i * d, (i + 1) * d).reduce((s, v, k) => s + v * gallery[j * d + k], 0);
  const pairs = (inGroup: (m: DrawnMask) => boolean) => {
    const [gen, imp]: number[][] = [[], []];
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j && inGroup(masks[i])) (labels[i] === labels[j] ? gen : imp).push(score(i, j));
    return { gen, imp };
  };
  // The protocol's own TAR is the genuine share at or above its threshold: the definition the
  // groups use agrees with the levels.
  const everyone = pairs(() => true);
  mfr.levels.forEach((l) => t.is(everyone.gen.filter((s) => s >= l.threshold).length / everyone.gen.length, l.tar, `FMR ${l.fmr}`));
  t.is(b.unmasked, masks.filter((m) => m.synthesizer === null).length);
  const expected = [
    ...Object.keys(MASK_KINDS).map((s) => ({ by: 'synthesizer', name: s, of: (m: DrawnMask) => m.synthesizer === s })),
    ...LEAVES.map((l) => ({ by: 'kind', name: l.kind!, of: (m: DrawnMask) => m.kind === l.kind })),
  ].filter((e) => masks.some(e.of));
  t.deepEqual(b.groups.map((g) => `${g.by}:${g.name}`), expected.map((e) => `${e.by}:${e.name}`));
  t.true(b.groups.filter((g) => g.by === 'kind').length >= 5, 'several kinds drawn');
  expected.forEach((e, gi) => {
    const g = b.groups[gi];
    const { gen, imp } = pairs(e.of);
    t.is(g.probes, masks.filter(e.of).length);
    t.deepEqual([g.genuine, g.impostors], [gen.length, imp.length], g.name);
    t.is(g.few, gen.length < MIN_GENUINE);
    g.levels.forEach((l, k) => {
      t.is(l.threshold, mfr.levels[k].threshold);
      t.is(l.tar, gen.filter((s) => s >= l.threshold).length / gen.length, `${g.name} TAR at FMR ${l.fmr}`);
      t.is(l.far, imp.filter((s) => s >= l.threshold).length / imp.length, `${g.name} FAR at FMR ${l.fmr}`);
    });
    t.false(g.levels[3].measurable, 'FMR 1e-6 is not measurable on 8000 impostor pairs');
  });
  // The thresholds do split the groups: neither everything nor nothing accepted.
  t.true(b.groups.some((g) => g.levels[1].tar > 0 && g.levels[1].tar < 1 && g.levels[1].far! > 0));
});

test('a .bin breakdown by hand: pairs in each of their masks, decisions by fold', (t) => {
  const none: DrawnMask = { synthesizer: null, kind: null };
  const [s, f, h] = [{ synthesizer: 'template', kind: 'surgical' }, { synthesizer: 'renderer', kind: 'full' }, { synthesizer: 'renderer', kind: 'half' }];
  // Pairs: (s, none) same accepted; (f, h) same rejected; (none, none) diff accepted; (s, f) diff rejected.
  const b = pairBreakdown('x', [s, none, f, h, none, none, s, f], [true, true, false, false], [true, false, true, false]);
  const rows = b.groups.map((g) => [g.by, g.name, g.pairs, g.genuine, g.impostors, g.accuracy, g.tar, g.far]);
  t.deepEqual(rows, [
    ['synthesizer', 'template', 2, 1, 1, 1, 1, 0],
    ['synthesizer', 'renderer', 2, 1, 1, 0.5, 0, 0],
    ['kind', 'surgical', 2, 1, 1, 1, 1, 0],
    ['kind', 'full', 2, 1, 1, 0.5, 0, 0],
    ['kind', 'half', 1, 1, 0, 0, 0, null],
    ['no mask', 'no mask', 1, 0, 1, 0, 0, 1],
  ]);
  t.true(b.groups.every((g) => g.few));
});

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-breakdown-'));
const data = writeSyntheticDataset(path.join(root, 'data'), { identities: 6, perIdentity: 5, heldOut: 4, pairs: 20, seed: 5, quality: 90 });

test('masks drawn on the fly: both synthesizers and several kinds, the same faces as decodeFaces', (t) => {
  const ds = openTrainingData(data.rec);
  const imgs = Array.from({ length: 30 }, (_, i) => ds.sample(i).image);
  const mask = { style: 'mixed', seed: 4, first: 0 };
  const m = native.decodeMaskedFaces(imgs, 112, false, 'x', mask);
  t.deepEqual([...m.faces.toFloat32()], [...native.decodeFaces(imgs, 112, false, 'x', mask).toFloat32()]);
  t.deepEqual(new Set(m.synthesizers), new Set(['template', 'renderer']));
  t.true(new Set(m.kinds).size >= 4, `kinds drawn: ${[...new Set(m.kinds)]}`);
  m.synthesizers.forEach((s, i) => t.true(MASK_KINDS[s].includes(m.kinds[i]), `${s}/${m.kinds[i]}`));
  t.deepEqual(new Set(native.decodeMaskedFaces(imgs, 112, false, 'x', { ...mask, style: 'template' }).synthesizers), new Set(['template']));
  // Across batches and ranks' slices, the masks embedMasked reports are the decoder's.
  const model = createModel('tiny');
  const e = embedMasked(model, imgs, { batch: 7, mask: { style: 'mixed', seed: 4 } });
  t.deepEqual(e.masks!.map((x) => `${x.synthesizer}/${x.kind}`), m.synthesizers.map((s, i) => `${s}/${m.kinds[i]}`));
  model.dispose();
});

test('the MFR report breaks MFR down by mask (JSON, HTML), the groups adding up to the protocol', (t) => {
  const model = createModel('tiny');
  const r = evaluateMaskedFaces(model, openTrainingData(data.rec), { model: 'tiny', mask: { style: 'mixed', seed: 2 } });
  model.dispose();
  const synth = r.breakdown.groups.filter((g) => g.by === 'synthesizer');
  t.deepEqual(synth.map((g) => g.name).sort(), ['renderer', 'template']);
  t.is(r.breakdown.unmasked, 0);
  t.is(synth.reduce((s, g) => s + g.probes, 0), 30);
  t.is(synth.reduce((s, g) => s + g.genuine, 0), r.mfr.genuine);
  t.is(synth.reduce((s, g) => s + g.impostors, 0), r.mfr.impostors);
  const kinds = r.breakdown.groups.filter((g) => g.by === 'kind');
  t.is(kinds.reduce((s, g) => s + g.genuine, 0), r.mfr.genuine);
  // Every probe is in one synthesizer group: their accepted genuine pairs add up to the TAR.
  r.mfr.levels.forEach((l, k) => t.is(synth.reduce((s, g) => s + g.levels[k].genuineAccepted, 0), Math.round(l.tar * r.mfr.genuine), `FMR ${l.fmr}`));
  const out = writeReport(path.join(root, 'report'), r);
  const html = fs.readFileSync(out.html, 'utf8');
  t.regex(html, /<h2>MFR by mask<\/h2><p>Masks drawn on the fly\. Each group holds the masked probes/);
  t.regex(html, /synthesizer: template<\/td>/);
  t.deepEqual(JSON.parse(fs.readFileSync(out.json, 'utf8')).breakdown.groups.length, r.breakdown.groups.length);
});

const header = JSON.stringify({ maskfr_masks: 1, input: 'verify.bin', seed: 3, probability: 0.5, template_share: 0.5 });
const line = (key: number | string, m: DrawnMask) => JSON.stringify({ key, synthesizer: m.synthesizer, kind: m.kind, color: m.synthesizer === null ? null : '#aabbcc', pattern: null });

test('a sidecar with a wrong line count, key, kind or JSON is refused, naming the file and line', (t) => {
  const file = path.join(root, 'bad.masks.jsonl');
  const keys = [0, 1, 2];
  const ok = [line(0, LEAVES[0]), line(1, { synthesizer: null, kind: null }), line(2, LEAVES[6])];
  const refuse = (lines: string[], re: RegExp) => {
    fs.writeFileSync(file, lines.join('\n') + '\n');
    t.throws(() => readMaskSidecar(file, keys, 'x.bin'), { message: re });
  };
  fs.writeFileSync(file, [header, ...ok].join('\n') + '\n');
  t.deepEqual(readMaskSidecar(file, keys).masks.map((m) => m.kind), ['surgical', null, 'half']);
  refuse([header, ...ok.slice(0, 2)], /bad\.masks\.jsonl: 2 image lines for the 3 images of x\.bin: line 4 \(image 2\) is missing/);
  refuse([header, ...ok, line(3, LEAVES[0])], /bad\.masks\.jsonl: 4 image lines for the 3 images of x\.bin: line 5 is past the last image/);
  refuse([header, ok[0], line(2, LEAVES[1]), ok[2]], /bad\.masks\.jsonl line 3: key 2, expected 1 \(image 1 of x\.bin\)/);
  refuse([header, ok[0], line('1', LEAVES[1]), ok[2]], /line 3: key "1", expected 1/);
  refuse([header, ok[0], '{"key": 1, "synthesizer": nul', ok[2]], /bad\.masks\.jsonl line 3: not JSON/);
  refuse([header, ok[0], ok[1], line(2, { synthesizer: 'template', kind: 'full' })], /line 4: kind "full", expected one of surgical, n95, kn95, cloth, gas for the template synthesizer/);
  refuse([header, ok[0], ok[1], line(2, { synthesizer: 'scarf', kind: 'full' })], /line 4: synthesizer "scarf", expected "template", "renderer" or null/);
  refuse([JSON.stringify({ maskfr_masks: 2 }), ...ok], /bad\.masks\.jsonl line 1: sidecar version 2, this maskfr reads version 1/);
  refuse([line(0, LEAVES[0]), ...ok], /line 1: not a masks sidecar header/);
  refuse(['[1]', ...ok], /line 1: expected a JSON object/);
});

/** A hand-written sidecar for a .bin: pair k's first image masked when k % 3 ≠ 2, the second
 *  never, so each pair is in at most one group. */
function binMasks(images: number): DrawnMask[] {
  return Array.from({ length: images }, (_, i) => (i % 2 === 0 && (i / 2) % 3 !== 2 ? LEAVES[(i / 2) % LEAVES.length] : { synthesizer: null, kind: null }));
}

/** `maskfr eval` of a fresh tiny model (its weights saved as `name`) on `data`, in a child
 *  process: a function of the further arguments. */
function evalCli(name: string, data: string): (...a: string[]) => SpawnSyncReturns<string> {
  const weights = path.join(root, `${name}.safetensors`);
  const m = createModel('tiny');
  saveCheckpoint(m, weights);
  m.dispose();
  const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
  return (...a) => spawnSync(process.execPath, [cli, 'eval', '--model', 'tiny', '--weights', weights, '--data', data, ...a], { encoding: 'utf8' });
}

test('a hand-written sidecar drives the breakdown of a pre-masked .bin (and maskfr eval finds it beside the .bin)', (t) => {
  const set = readVerificationBin(data.bin);
  const masks = binMasks(set.images.length);
  fs.writeFileSync(sidecarPath(data.bin), [header, ...masks.map((m, i) => line(i, m))].join('\n') + '\n');
  const side = readMaskSidecar(sidecarPath(data.bin), sidecarKeys(data.bin, set.images.length), data.bin);
  const model = createModel('tiny');
  const v = verify(model, set, { masks: { source: side.file, masks: side.masks } });
  const b = v.breakdown!;
  const inPair = (k: number, f: (m: DrawnMask) => boolean) => f(masks[2 * k]) || f(masks[2 * k + 1]);
  for (const g of b.groups) {
    const of = g.by === 'no mask' ? (k: number) => !inPair(k, (m) => m.synthesizer !== null) : (k: number) => inPair(k, (m) => m[g.by as 'synthesizer' | 'kind'] === g.name);
    const ks = set.issame.map((_, k) => k).filter(of);
    t.deepEqual([g.pairs, g.genuine, g.impostors], [ks.length, ks.filter((k) => set.issame[k]).length, ks.filter((k) => !set.issame[k]).length], `${g.by} ${g.name}`);
  }
  // Synthesizer groups and 'no mask' split the pairs; with ten equal folds of two pairs the
  // accuracy is the pooled share of right decisions.
  const split = b.groups.filter((g) => g.by !== 'kind');
  t.is(split.reduce((s, g) => s + g.pairs, 0), 20);
  t.true(Math.abs(split.reduce((s, g) => s + g.accuracy * g.pairs, 0) - v.accuracy * 20) < 1e-9);
  model.dispose();

  const run = evalCli('tiny', data.bin);
  const found = run();
  t.is(found.status, 0, found.stderr);
  t.regex(found.stdout, /masks: .*verify\.bin\.masks\.jsonl \(the sidecar beside the data\)/);
  t.regex(found.stdout, /by mask \(masks from .*verify\.bin\.masks\.jsonl\):\n +group +pairs +genuine +impostors +accuracy +TAR +FAR\n/);
  t.regex(found.stdout, /\n +\*?no mask +6 /);
  t.notRegex(run('--masks', 'none').stdout, /by mask/);
  const wrong = path.join(root, 'wrong.masks.jsonl');
  fs.writeFileSync(wrong, [header, line(0, LEAVES[0])].join('\n'));
  const refused = run('--masks', wrong);
  t.is(refused.status, 1);
  t.regex(refused.stderr, /wrong\.masks\.jsonl: 1 image lines for the 40 images of .*verify\.bin: line 3 \(image 1\) is missing/);
});

test('a pre-masked labelled set: masked images are the probes, its unmasked ones (or --gallery, the set it came from) the gallery, broken down by the sidecar', (t) => {
  const ds = RecordDataset.open(data.rec);
  const keys = sidecarKeys(data.rec);
  t.deepEqual(keys, Array.from({ length: 30 }, (_, i) => ds.sample(i).key));
  // Image i of identity i / 5: the first two of each identity unmasked.
  const masks = keys.map((_, i): DrawnMask => (i % 5 < 2 ? { synthesizer: null, kind: null } : LEAVES[i % LEAVES.length]));
  const file = path.join(root, 'rec.masks.jsonl');
  fs.writeFileSync(file, [header, ...masks.map((m, i) => line(keys[i], m))].join('\n') + '\n');
  const side = readMaskSidecar(file, keys, data.rec);
  const model = createModel('tiny');
  const r = evaluateMaskedFaces(model, openTrainingData(data.rec), { model: 'tiny', premasked: { source: file, masks: side.masks } });
  model.dispose();
  t.deepEqual(r.premasked, { sidecar: file, probes: 18, gallery: 12, galleryFrom: null });
  t.is(r.mask, null);
  // 18 probes × 2 same-identity gallery images; SFR over the 12 unmasked images only.
  t.deepEqual([r.mfr.genuine, r.mfr.impostors], [36, 18 * 12 - 36]);
  t.deepEqual([r.sfr.genuine, r.sfr.impostors], [6, (12 * 11) / 2 - 6]);
  t.is(r.breakdown.groups.filter((g) => g.by === 'synthesizer').reduce((s, g) => s + g.genuine, 0), 36);
  t.regex(fs.readFileSync(writeReport(path.join(root, 'pre-report'), r).html, 'utf8'), /pre-masked: its 18 masked images \(per .*rec\.masks\.jsonl\) are the probes, its 12 unmasked ones the gallery/);
  // An MoE embeds the pre-masked probes with its masked head, as it does the masks it draws.
  const moe = createModel('tiny-moe') as IResNetMoE;
  moe.maskedByDefault = false;
  const imgs = [0, 1, 2].map((i) => ds.sample(i).body);
  t.notDeepEqual(embedFlipped(moe, imgs, { masked: true }), embedFlipped(moe, imgs));
  moe.maskedByDefault = true;
  t.deepEqual(embedFlipped(moe, imgs, { masked: true }), embedFlipped(moe, imgs));
  moe.dispose();
  const none = { synthesizer: null, kind: null };
  const m2 = createModel('tiny');
  t.throws(() => evaluateMaskedFaces(m2, openTrainingData(data.rec), { premasked: { source: file, masks: keys.map(() => none) } }), {
    message: /rec\.masks\.jsonl: no image of .*train\.rec is masked: no probes/,
  });
  const all = keys.map((_, i) => LEAVES[i % LEAVES.length]);
  t.throws(() => evaluateMaskedFaces(m2, openTrainingData(data.rec), { premasked: { source: file, masks: all } }), {
    message: /rec\.masks\.jsonl: all 30 images of .*train\.rec are masked; give the unmasked set they were masked from as the gallery \(--gallery\)/,
  });
  // With the set it was masked from as the gallery (here the same file stands for both): every
  // masked probe against every gallery image but its own source.
  const g = evaluateMaskedFaces(m2, openTrainingData(data.rec), { premasked: { source: file, masks: side.masks, gallery: openTrainingData(data.rec) } });
  t.deepEqual(g.premasked, { sidecar: file, probes: 18, gallery: 30, galleryFrom: data.rec });
  t.deepEqual([g.mfr.genuine, g.mfr.impostors], [18 * 4, 18 * 25]);
  t.deepEqual([g.sfr.genuine, g.sfr.impostors], [60, (30 * 29) / 2 - 60]);
  t.is(g.breakdown.groups.filter((x) => x.by === 'synthesizer').reduce((s, x) => s + x.genuine, 0), 72);
  const other = writeSyntheticDataset(path.join(root, 'other'), { identities: 5, perIdentity: 5, heldOut: 2, pairs: 2, seed: 6, quality: 90 });
  t.throws(() => evaluateMaskedFaces(m2, openTrainingData(data.rec), { premasked: { source: file, masks: side.masks, gallery: openTrainingData(other.rec) } }), {
    message: /other\/train\.rec: 25 images, .*train\.rec has 30: not the set it was masked from/,
  });
  m2.dispose();

  // The CLI: the sidecar by --masks, the gallery by --gallery.
  const run = evalCli('tiny-rec', data.rec);
  const out = run('--masks', file, '--gallery', data.rec);
  t.is(out.status, 0, out.stderr);
  t.regex(out.stdout, /30 images, 6 identities, pre-masked per .*rec\.masks\.jsonl: 18 masked probes, 30 gallery images of .*train\.rec/);
  t.regex(out.stdout, /MFR by mask \(masks from .*rec\.masks\.jsonl\):\n +group +probes +genuine +impostors +TAR@1e-1 /);
  t.regex(run('--gallery', data.rec).stderr, /--gallery .*train\.rec needs a pre-masked --data/);
});
