// Alignment from five landmarks against insightface's own norm_crop (make_align_fixtures.py:
// two real photographs with hand-marked landmarks and random landmark sets that rotate, scale
// and push the crop past the border, cropped by OpenCV 4.x; make_align_float_fixtures.py: the
// same by OpenCV 5.x, and at sizes 128 and 224), the landmark file formats, and `maskfr align`.

import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { alignFace, alignTransform, readLandmarks } from '../ts';
import { native } from '../ts/native';
import { main } from '../ts/cli/main';

const fx = (n: string) => path.join(__dirname, 'fixtures', n);
const png = (n: string) => native.decodeImage(fs.readFileSync(n), n);
const cases: { source: string; crop: string; landmarks: number[][]; transform: number[][]; outside: number }[] = JSON.parse(fs.readFileSync(fx('align_cases.json'), 'utf8')).cases;
const float: { opencv: string; cases: { source: string; crop: string; size: number; landmarks: number[][] }[] } = JSON.parse(fs.readFileSync(fx('align_float_cases.json'), 'utf8'));
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-align-'));

/** Largest |difference| and the share of equal values. */
function compare(a: Buffer, b: Buffer): { max: number; exact: number } {
  let max = 0;
  let same = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    max = Math.max(max, d);
    same += d === 0 ? 1 : 0;
  }
  return { max, exact: same / a.length };
}

test("fixed-warp crops equal insightface's norm_crop with OpenCV 4.x on real photographs and random landmark sets", (t) => {
  t.is(cases.length, 10);
  t.true(cases.some((c) => c.outside > 0.4), 'the zero border is exercised');
  let values = 0;
  let exact = 0;
  for (const c of cases) {
    const ours = alignFace(png(fx(c.source)), c.landmarks.flat(), 112, c.crop, 'fixed');
    const theirs = png(fx(c.crop));
    const r = compare(ours.data, theirs.data);
    t.true(r.max <= 1, `${c.crop}: off by ${r.max} levels`);
    values += ours.data.length;
    exact += r.exact * ours.data.length;
    // skimage's SVD and our closed form agree to rounding.
    alignTransform(c.landmarks.flat()).forEach((v, i) => t.true(Math.abs(v - c.transform[Math.floor(i / 3)][i % 3]) < 1e-9 * (1 + Math.abs(v)), `${c.crop}: M[${i}]`));
  }
  t.log(`${((100 * exact) / values).toFixed(3)}% of ${values} values exactly insightface's`);
  t.is(exact, values);
});

test("float-warp crops (the default) equal insightface's norm_crop with OpenCV 5.x; the fixed warp's do not", (t) => {
  t.regex(float.opencv, /^5\./);
  t.is(float.cases.length, 12);
  let [values, exact, fixedExact, fixedMax] = [0, 0, 0, 0];
  for (const c of float.cases) {
    const img = png(fx(c.source));
    const theirs = png(fx(c.crop));
    const ours = alignFace(img, c.landmarks.flat(), c.size, c.crop);
    t.deepEqual([ours.width, theirs.width, theirs.height], [c.size, c.size, c.size], c.crop);
    const r = compare(ours.data, theirs.data);
    t.is(r.max, 0, `${c.crop}: off by ${r.max} levels`);
    const f = compare(alignFace(img, c.landmarks.flat(), c.size, c.crop, 'fixed').data, theirs.data);
    values += ours.data.length;
    exact += r.exact * ours.data.length;
    fixedExact += f.exact * ours.data.length;
    fixedMax = Math.max(fixedMax, f.max);
  }
  t.log(`float: ${((100 * exact) / values).toFixed(3)}% of ${values} values exactly OpenCV ${float.opencv}'s; fixed: ${((100 * fixedExact) / values).toFixed(1)}%, off by up to ${fixedMax}`);
  t.is(exact, values);
  t.true(fixedExact < 0.95 * values && fixedMax >= 2, 'the two warps differ where it shows');
  t.throws(() => alignFace(png(fx(float.cases[0].source)), float.cases[0].landmarks.flat(), 112, 'x.png', 'cubic' as 'fixed'), { message: "x.png: the warp is 'fixed' (OpenCV 4.x) or 'float' (OpenCV 5.x), got 'cubic'" });
});

test('landmarks read alike from insightface lines, JSON and CSV; bad ones are named by file and line', (t) => {
  const dir = tmp();
  const txt = readLandmarks(fx('align_5pts_score.txt'));
  t.deepEqual(txt.map((f) => f.name), ['align_astronaut.png', 'align_hopper.png']);
  const json = path.join(dir, 'l.json');
  fs.writeFileSync(json, JSON.stringify(Object.fromEntries(txt.map((f) => [f.name, [0, 1, 2, 3, 4].map((i) => f.points.slice(2 * i, 2 * i + 2))]))));
  const csv = path.join(dir, 'l.csv');
  fs.writeFileSync(csv, ['name,x1,y1,x2,y2,x3,y3,x4,y4,x5,y5', ...txt.map((f) => [f.name, ...f.points].join(','))].join('\n'));
  for (const other of [readLandmarks(json), readLandmarks(csv)]) t.deepEqual(other.map((f) => [f.name, f.points]), txt.map((f) => [f.name, f.points]));

  const bad = (body: string, message: string | RegExp, ext = 'txt') => {
    const f = path.join(dir, `bad.${ext}`);
    fs.writeFileSync(f, body);
    t.throws(() => readLandmarks(f), { message: typeof message === 'string' ? `${f}${message}` : message });
  };
  const good = '38 51 73 51 56 71 41 92 70 92';
  bad(`a.jpg ${good} 0.9\nb.jpg 1 2 3\n`, ' line 2: expected an image name and 10 coordinates (5 x,y points) and an optional score, got 4 fields');
  bad(`a.jpg ${good.replace('56', 'nan')}\n`, ' line 1: x3 is "nan", not a finite number');
  bad(`a.jpg 10 10 10 10 10 10 10 10 10.5 10\n`, ' line 1 (a.jpg): the five landmarks lie within 0.500 pixel of each other: not a face');
  bad(`a.jpg ${good}\n\na.jpg ${good}\n`, new RegExp(' line 3: a.jpg is listed twice \\(also at .* line 1\\)$'));
  bad(JSON.stringify({ 'a.jpg': [[1, 2]] }), ' "a.jpg": expected five [x, y] pairs or ten numbers', 'json');
  bad('', ': no landmarks in it');
});

test('maskfr align writes the crops of a folder and of one image, atomically, and refuses what it cannot find', async (t) => {
  const dir = tmp();
  const out = path.join(dir, 'out');
  const input = path.join(dir, 'in');
  fs.mkdirSync(input);
  for (const n of ['align_astronaut.png', 'align_hopper.png']) fs.copyFileSync(fx(n), path.join(input, n));
  t.is(await main(['align', input, '--landmarks', fx('align_5pts_score.txt'), '--out', out]), 0);
  t.deepEqual(fs.readdirSync(out).sort(), ['align_astronaut.png', 'align_hopper.png']);
  for (const n of ['astronaut', 'hopper']) t.true(png(path.join(out, `align_${n}.png`)).data.equals(png(fx(`align_${n}_marked_float.png`)).data), n);
  t.is(await main(['align', input, '--landmarks', fx('align_5pts_score.txt'), '--out', out, '--warp', 'fixed']), 0);
  for (const n of ['astronaut', 'hopper']) t.true(png(path.join(out, `align_${n}.png`)).data.equals(png(fx(`align_${n}_marked.png`)).data), `${n} --warp fixed`);
  await t.throwsAsync(async () => main(['align', input, '--landmarks', fx('align_5pts_score.txt'), '--out', out, '--warp', 'opencv']), { message: 'align: --warp must be float (OpenCV 5.x) or fixed (OpenCV 4.x), got opencv' });

  t.is(await main(['align', path.join(input, 'align_hopper.png'), '--landmarks', fx('align_5pts_score.txt'), '--out', path.join(dir, 'one'), '--format', 'jpg']), 0);
  const jpg = native.decodeImage(fs.readFileSync(path.join(dir, 'one', 'align_hopper.jpg')), 'jpg');
  t.deepEqual([jpg.width, jpg.height], [112, 112]);

  const lm = path.join(dir, 'l.txt');
  fs.writeFileSync(lm, `${fs.readFileSync(fx('align_5pts_score.txt'), 'utf8')}gone.jpg 38 51 73 51 56 71 41 92 70 92 0.9\n`);
  await t.throwsAsync(async () => main(['align', input, '--landmarks', lm, '--out', path.join(dir, 'x')]), { message: `${lm} line 3: ${path.join(input, 'gone.jpg')} does not exist` });
  t.false(fs.existsSync(path.join(dir, 'x')), 'nothing written before every image is found');
  fs.writeFileSync(lm, '../escape.jpg 38 51 73 51 56 71 41 92 70 92 0.9\n');
  await t.throwsAsync(async () => main(['align', input, '--landmarks', lm, '--out', path.join(dir, 'x')]), { message: `${lm} line 1: ../escape.jpg leaves the input folder` });
  await t.throwsAsync(async () => main(['align', input, '--landmarks', fx('align_5pts_score.txt'), '--out', out, '--size', '100']), { message: /crop size 100 is not a multiple of 112 or 128/ });
  await t.throwsAsync(async () => main(['align', input, '--landmarks', fx('align_5pts_score.txt'), '--out', out, '--size', '1120000']), { message: /crop size 1120000 is over 4096/ });
  // Two images that would write one crop: refused before either is written.
  fs.copyFileSync(fx('align_hopper.png'), path.join(input, 'align_hopper.jpg'));
  const hopper = fs.readFileSync(fx('align_5pts_score.txt'), 'utf8').split('\n').find((l) => l.startsWith('align_hopper.png'))!;
  fs.writeFileSync(lm, `${hopper}\n${hopper.replace('align_hopper.png', 'align_hopper.jpg')}\n`);
  await t.throwsAsync(async () => main(['align', input, '--landmarks', lm, '--out', path.join(dir, 'y'), '--format', 'png']), { message: /line 2: align_hopper\.jpg would be written to .*align_hopper\.png, as align_hopper\.png is: rename one of them/ });
  t.false(fs.existsSync(path.join(dir, 'y')), 'nothing written');
});
