import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ARCFACE_TEMPLATE, createModel, entryValues, readSafetensors, saveCheckpoint, syntheticFace } from '../ts';
import { native } from '../ts/native';
import { Tensor } from '../ts/tensor/tensor';
import { embedIjb, identifyIjb, ijbCacheFile, readIjbMeta, verifyIjb, writeIjbIdentificationReport, writeIjbReport } from '../ts/eval/ijb';

const fixtures = path.join(__dirname, 'fixtures', 'ijb');
const fx = readSafetensors(path.join(fixtures, 'reference.safetensors'));
const values = (name: string) => entryValues(fx.tensors.get(name)!);
interface Ident {
  rank: number[];
  tpir: number[];
  threshold: number[];
}
const ref = JSON.parse(fx.metadata.reference) as {
  fars: number[];
  tar: Record<'detector' | 'plain', number[]>;
  images: number;
  templates: number;
  pairs: number;
  genuine: number;
  identification: { ranks: number[]; fpirs: number[]; probes: number; gallery: number; detector: Ident; plain: Ident };
};

// The fixture's features fed straight in: this checks template pooling, scores and the ROC
// reading against eval_ijbc.py's computation (make_ijb_fixtures.py), not the network.
for (const detectorScore of [true, false]) {
  test(`1:1 TAR@FAR equals eval_ijbc.py's on the fixture (detector score ${detectorScore ? 'on' : 'off'})`, (t) => {
    const meta = readIjbMeta(path.join(fixtures, 'IJBC'), 'IJBC');
    t.is(meta.names.length, ref.images);
    t.deepEqual([...meta.faceness], [...values('faceness')]);
    const r = verifyIjb(meta, { features: values('features') as Float32Array, detectorScore });
    t.deepEqual([r.templates, r.pairs, r.genuine], [ref.templates, ref.pairs, ref.genuine]);
    // Our pooling sums in float64 where numpy takes float32 media means: scores agree to 1e-6
    // (the fixture keeps every genuine/impostor pair of neighbouring scores further apart),
    // so the ROC, and every TAR, is the same exactly.
    const expected = values(detectorScore ? 'scores_detector' : 'scores_plain');
    const worst = r.scores.reduce((m, s, i) => Math.max(m, Math.abs(s - expected[i])), 0);
    t.true(worst < 1e-6, `largest score difference ${worst}`);
    t.deepEqual(r.levels.map((l) => l.far), ref.fars);
    t.deepEqual(r.levels.map((l) => l.tar), ref.tar[detectorScore ? 'detector' : 'plain']);
  });

  test(`1:N ranks and TPIR@FPIR equal ijb_1n.py's on the fixture (detector score ${detectorScore ? 'on' : 'off'})`, (t) => {
    const meta = readIjbMeta(path.join(fixtures, 'IJBC'), 'IJBC');
    const r = identifyIjb(meta, { features: values('features') as Float32Array, detectorScore });
    const want = ref.identification;
    t.deepEqual([r.probes, r.gallery], [want.probes, want.gallery]);
    const w = want[detectorScore ? 'detector' : 'plain'];
    t.deepEqual(r.ranks.map((k) => k.rank), want.ranks);
    t.deepEqual(r.ranks.map((k) => k.rate), w.rank);
    t.deepEqual(r.levels.map((l) => l.fpir), want.fpirs);
    t.deepEqual(r.levels.map((l) => l.tpir), w.tpir);
    r.levels.forEach((l, i) => t.true(Math.abs(l.threshold - w.threshold[i]) < 1e-6, `threshold at FPIR ${l.fpir}`));
  });
}

test('malformed meta lines and pairs of unknown templates are named', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-ijb-bad-'));
  fs.cpSync(path.join(fixtures, 'IJBC'), root, { recursive: true });
  const pairs = path.join(root, 'meta', 'ijbc_template_pair_label.txt');
  fs.appendFileSync(pairs, '99999 1995 0\n');
  const meta = readIjbMeta(root, 'IJBC');
  t.throws(() => verifyIjb(meta, { features: values('features') as Float32Array }), { message: /pairs template 99999/ });
  fs.appendFileSync(pairs, '1995 1757 2\n');
  t.throws(() => verifyIjb(meta, { features: values('features') as Float32Array }), { message: /ijbc_template_pair_label\.txt:7142:/ });
  // A subject with two gallery templates cannot be identified as ijb_1n.py does it.
  const g2 = path.join(root, 'meta', 'ijbc_1N_gallery_G2.csv');
  const probe = fs.readFileSync(path.join(root, 'meta', 'ijbc_1N_probe_mixed.csv'), 'utf8').split('\n')[1].split(',');
  fs.appendFileSync(g2, `${probe[0]},${probe[1]},x.jpg\n`);
  t.throws(() => identifyIjb(meta, { features: values('features') as Float32Array }), { message: new RegExp(`subject ${probe[1]} has 2 gallery templates`) });
  fs.appendFileSync(g2, 'oops\n');
  t.throws(() => identifyIjb(meta, { features: values('features') as Float32Array }), { message: /ijbc_1N_gallery_G2\.csv:\d+: expected 'TEMPLATE_ID,SUBJECT_ID/ });
  fs.appendFileSync(path.join(root, 'meta', 'ijbc_face_tid_mid.txt'), 'extra.jpg 1 2\n');
  t.throws(() => readIjbMeta(root, 'IJBC'), { message: /lists 495 images .* 496/ });
});

/** A 112×112 RGB face inside a `w`×`h` black canvas at (`dx`, `dy`), as PNG. */
function looseCrop(face: Uint8Array, w: number, h: number, dx: number, dy: number): Buffer {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < 112; y++) px.set(face.subarray(y * 336, (y + 1) * 336), ((y + dy) * w + dx) * 3);
  return native.encodePng(px, w, h);
}

/** The fixture's meta with loose crops: a synthetic identity per template (rendered aligned to
 *  ArcFace's template, the fixture's landmarks) inside a larger image, landmarks moved with it. */
function withImages(): { root: string; meta: ReturnType<typeof readIjbMeta> } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-ijb-'));
  fs.cpSync(path.join(fixtures, 'IJBC', 'meta'), path.join(root, 'meta'), { recursive: true });
  const lmkFile = path.join(root, 'meta', 'ijbc_name_5pts_score.txt');
  const moved = fs.readFileSync(lmkFile, 'utf8').replace(/^(\S+) (.*) (\S+)$/gm, (_, nm: string, pts: string, score: string) => `${nm} ${pts.split(' ').map((v, k) => (Number(v) + (k % 2 === 0 ? 12 : 7)).toFixed(4)).join(' ')} ${score}`);
  fs.writeFileSync(lmkFile, moved);
  const meta = readIjbMeta(root, 'IJBC');
  fs.mkdirSync(path.join(root, 'loose_crop'));
  meta.names.forEach((nm, i) => fs.writeFileSync(path.join(root, 'loose_crop', nm), looseCrop(syntheticFace(25, meta.templates[i] % 1000, i), 140, 128, 12, 7)));
  return { root, meta };
}

test("loose crops are aligned by their landmarks (eval_ijbc.py's template): a face moved inside a larger image gives the same crop", (t) => {
  const face = syntheticFace(25, 3, 0);
  const lmk = (dx: number, dy: number) => Float64Array.from(ARCFACE_TEMPLATE.flat(), (v, k) => v + (k % 2 === 0 ? dx : dy));
  const at = native.ijbFaces([looseCrop(face, 112, 112, 0, 0)], lmk(0, 0), ['a']);
  const moved = native.ijbFaces([looseCrop(face, 150, 131, 21, 5)], lmk(21, 5), ['b']);
  const [a, b] = [new Tensor(at).toFloat32Array(), new Tensor(moved).toFloat32Array()];
  t.is(a.length, 2 * 3 * 112 * 112);
  t.deepEqual(b, a);
  // The second half is the mirror of the first.
  t.is(a[a.length / 2 + 5], a[111 - 5]);
  t.throws(() => native.ijbFaces([looseCrop(face, 112, 112, 0, 0)], new Float64Array(10).fill(50), ['same point']), { message: /same point/ });
});

// eval_ijbc.py holds the landmarks in float32 as well as its template, so skimage fits the
// similarity in float32 throughout (LAPACK's float32 SVD); we fit in float64 with the
// template's float32 rounding (maskfr-io's similarity_to_f32). The transforms differ by under
// 1e-5, which moves a few 1/32 positions: exactly the values that differ between skimage's
// own fits from float32 and from float64 landmarks (5, 0, 1, 3, 5 and 21 here; through 5.x's float warp 0, 1, 1, 0, 4, 6).
for (const [warp, suffix, opencv, expected] of [['fixed', '', '4.10', [5, 0, 1, 3, 5, 21]], ['float', '_float', '5.1', [0, 1, 1, 0, 4, 6]]] as const) {
  test(`eval_ijbc.py's crops of real photographs, turned and scaled (--warp ${warp}, OpenCV ${opencv}): all but a few values equal, none off by more than one level`, (t) => {
    const lines = fs.readFileSync(path.join(fixtures, 'crops_5pts_score.txt'), 'utf8').trim().split('\n');
    t.is(lines.length, 6);
    const side = 112 * 112;
    const off = lines.map((line, i) => {
      const [name, ...rest] = line.split(' ');
      const lmk = Float64Array.from(rest.slice(0, 10).map(Number));
      const x = new Tensor(native.ijbFaces([fs.readFileSync(path.join(__dirname, 'fixtures', name))], lmk, [name], warp)).toFloat32Array();
      const want = native.decodeImage(fs.readFileSync(path.join(fixtures, `crop_${i}${suffix}.png`)), `crop_${i}${suffix}.png`);
      // Back from (p/127.5 − 1), CHW, to HWC pixels.
      let [n, most] = [0, 0];
      for (let k = 0; k < side * 3; k++) {
        const d = Math.abs(Math.round((x[(k % 3) * side + Math.floor(k / 3)] + 1) * 127.5) - want.data[k]);
        [n, most] = [n + (d > 0 ? 1 : 0), Math.max(most, d)];
      }
      t.true(most <= 1, `${name} crop ${i}: a value ${most} levels off`);
      return n;
    });
    t.log(`values off by one level, of ${3 * side} per crop: ${off.join(', ')}`);
    t.deepEqual(off, expected);
  });
}

test('images are embedded with their mirrors once, cached, resumed after an interruption, and reported', (t) => {
  const { root, meta } = withImages();
  const model = createModel('tiny');
  const cache = path.join(root, 'cache');
  const o = { model: 'tiny', cache, batch: 100, out: null };
  const first = embedIjb(model, meta, o);
  t.is(first.embedded, meta.names.length);
  const feats = new Float32Array(fs.readFileSync(first.file).buffer.slice(0));
  t.is(feats.length, meta.names.length * first.dim);
  // A killed run leaves whole rows and a partial one: only the rest is embedded again.
  fs.truncateSync(first.file, (300 * first.dim + 3) * 4);
  const resumed = embedIjb(model, meta, o);
  t.is(resumed.embedded, meta.names.length - 300);
  t.deepEqual(new Float32Array(fs.readFileSync(resumed.file).buffer.slice(0)), feats);
  t.is(embedIjb(model, meta, o).embedded, 0);
  // Another head or embedding size is another cache file; a file without its .json starts again.
  t.not(embedIjb(model, meta, { ...o, variant: 'masked=true' }).file, first.file);
  // So is the other warp; the default is the float one.
  t.not(ijbCacheFile(meta, { ...o, warp: 'fixed' }), first.file);
  t.is(ijbCacheFile(meta, { ...o, warp: 'float' }), first.file);
  fs.rmSync(`${first.file.slice(0, -4)}.json`);
  t.is(embedIjb(model, meta, o).embedded, meta.names.length);
  t.deepEqual(new Float32Array(fs.readFileSync(first.file).buffer.slice(0)), feats);
  // Image 7's feature is the tiny model's embedding of it plus that of its mirror.
  const x = native.ijbFaces([fs.readFileSync(path.join(root, 'loose_crop', meta.names[7]))], meta.landmarks.subarray(70, 80), ['7']);
  t.deepEqual(new Tensor(x).toFloat32Array(), new Tensor(native.ijbFaces([fs.readFileSync(path.join(root, 'loose_crop', meta.names[7]))], meta.landmarks.subarray(70, 80), ['7'], 'float')).toFloat32Array());
  model.eval();
  const e = (model.forward(new Tensor(x)) as Tensor).toFloat32Array();
  const d = first.dim;
  for (let j = 0; j < d; j++) t.true(Math.abs(feats[7 * d + j] - (e[j] + e[d + j])) < 1e-4);
  const r = verifyIjb(meta, { file: first.file, dim: d, model: 'tiny', warp: 'float' });
  t.is(r.levels.length, 6);
  t.is(r.warp, 'float');
  const out = writeIjbReport(path.join(root, 'report'), r);
  t.true(fs.readFileSync(out.html, 'utf8').includes('<svg'));
  t.is(fs.readFileSync(out.png).subarray(1, 4).toString(), 'PNG');
  const n = writeIjbIdentificationReport(path.join(root, 'report'), identifyIjb(meta, { file: first.file, dim: d, model: 'tiny' }));
  t.true(fs.readFileSync(n.html, 'utf8').includes('rank-10'));
  model.dispose();
});

test('maskfr ijb: embeds once, then scores either protocol from the cache, with or without detector scores', (t) => {
  const { root } = withImages();
  const model = createModel('tiny');
  const weights = path.join(root, 'tiny.safetensors');
  saveCheckpoint(model, weights);
  model.dispose();
  const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
  const run = (...a: string[]) => spawnSync(process.execPath, [cli, 'ijb', '--root', root, '--model', 'tiny', '--weights', weights, '--cache', path.join(root, 'cache'), ...a], { encoding: 'utf8' });
  const first = run('--report', path.join(root, 'report'));
  t.is(first.status, 0, first.stderr);
  t.regex(first.stdout, /495 images: 495 embedded, 0 from /);
  t.regex(first.stdout, /IJBC 1:1: 120 templates, 120 genuine and 7020 impostor pairs \(features × detector score\); crops aligned with OpenCV 5\.x's float warpAffine \(--warp float\)/);
  t.regex(first.stdout, /1e-6 +\d+\.\d\d%/);
  t.true(fs.existsSync(path.join(root, 'report', 'ijbc_roc.png')));
  const second = run('--protocol', '1:N', '--detector-score', 'false');
  t.is(second.status, 0, second.stderr);
  t.regex(second.stdout, /495 images: 0 embedded, 495 from /);
  t.regex(second.stdout, /IJBC 1:N: 80 probe templates, a gallery of 40; crops aligned with OpenCV 5\.x's float warpAffine \(--warp float\)\n +rank-1 [\d.]+% +rank-5 [\d.]+% +rank-10 [\d.]+%\n +TPIR @ FPIR 1e-3: /);
  t.notRegex(second.stdout, /1:1|detector score/);
  const bad = run('--set', 'IJBA');
  t.not(bad.status, 0);
  t.regex(bad.stderr, /--set must be one of IJBB, IJBC, got IJBA/);
  // The other warp is other features: embedded again, and said so.
  const fixed = run('--protocol', '1:N', '--warp', 'fixed');
  t.is(fixed.status, 0, fixed.stderr);
  t.regex(fixed.stdout, /495 images: 495 embedded, 0 from [^\n]+\n[^\n]*OpenCV 4\.x's fixed-point warpAffine \(--warp fixed\)/);
  const badWarp = run('--warp', 'cubic');
  t.not(badWarp.status, 0);
  t.regex(badWarp.stderr, /ijb: --warp must be float \(OpenCV 5\.x\) or fixed \(OpenCV 4\.x\), got cubic/);
});
