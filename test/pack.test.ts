import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { alignFace, alignTransform, Loader, packRecordDataset, RecordDataset, writeRecordDataset } from '../ts';
import { native } from '../ts/native';
import { syntheticFace } from '../ts/data/synthetic-faces';

const dist = path.join(__dirname, '..', 'dist');
const run = (...args: string[]) => spawnSync(process.execPath, [path.join(dist, 'cli', 'main.js'), ...args], { encoding: 'utf8' });
const face = (id: number, i: number) => native.encodeJpeg(Buffer.from(syntheticFace(3, id, i)), 112, 112, 90);

/** A PNG whose header declares 13000² pixels in 8×8's bytes (CRC fixed, so only the size
 *  can refuse it). */
function pngBomb(): Buffer {
  const png = native.encodePng(Buffer.alloc(8 * 8 * 3, 90), 8, 8);
  png.writeUInt32BE(13000, 16);
  png.writeUInt32BE(13000, 20);
  png.writeUInt32BE(zlib.crc32(png.subarray(12, 29)), 29);
  return png;
}

function write(file: string, bytes: Buffer | string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes);
}

test('a folder with a corrupt JPEG, a text file named .jpg and a PNG bomb: those listed and skipped, the rest as the old pack wrote it', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-pack-'));
  const root = path.join(dir, 'faces');
  const good: { label: number; body: Buffer }[] = [];
  ['ann', 'bob', 'cy'].forEach((who, label) => {
    for (let i = 0; i < 3; i++) {
      const body = face(label, i);
      write(path.join(root, who, `${i}.jpg`), body);
      good.push({ label, body });
    }
  });
  write(path.join(root, 'ann', '3.jpg'), face(0, 3).subarray(0, 600)); // cut: the header reads, the pixels do not
  write(path.join(root, 'bob', 'readme.jpg'), 'a text file named .jpg');
  write(path.join(root, 'cy', 'big.png'), pngBomb());
  const out = path.join(dir, 'x.rec');
  const seen: number[] = [];
  const r = await packRecordDataset({ folder: root }, out, { maxBad: 0.5, threads: 2, onProgress: (p) => seen.push(p.done) });
  t.deepEqual(r, { images: 9, identities: 3, emptyIdentities: 0, bad: 3, badList: path.join(dir, 'x.bad.txt') });
  t.is(seen[seen.length - 1], 12);
  const listed = fs.readFileSync(r.badList!, 'utf8').trim().split('\n');
  t.is(listed.length, 3);
  t.regex(listed[0], /faces\/ann\/3\.jpg: corrupt image/);
  t.regex(listed[1], /faces\/bob\/readme\.jpg: 22 bytes that are neither JPEG nor PNG/);
  t.regex(listed[2], /faces\/cy\/big\.png: the header declares 13000x13000 pixels, more than the 4096x4096 decoded at most/);
  // The old pack: every sample in memory, written by writeRecordDataset.
  writeRecordDataset(path.join(dir, 'old.rec'), good);
  t.true(fs.readFileSync(out).equals(fs.readFileSync(path.join(dir, 'old.rec'))), '.rec bytes');
  t.true(fs.readFileSync(path.join(dir, 'x.idx')).equals(fs.readFileSync(path.join(dir, 'old.idx'))), '.idx bytes');
  t.deepEqual(RecordDataset.open(out).identities?.map((i) => [i.start, i.end]), [[1, 4], [4, 7], [7, 10]]);
  // The default share (1%) refuses this folder: nothing written but the list.
  const refused = run('pack', root, path.join(dir, 'y.rec'));
  t.is(refused.status, 1);
  t.regex(refused.stderr, /pack: 3 of the 12 images cannot be read or decoded, more than the 1% allowed; nothing written \(all are listed in .*y\.bad\.txt\):\n {2}.*ann\/3\.jpg: corrupt image/);
  t.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('y.')), ['y.bad.txt']);
  fs.rmSync(dir, { recursive: true });
});

test('a .lst is packed relative to its folder; a path leaving it is refused unless --root is given; a .rec re-packed to a subset', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-pack-lst-'));
  for (let id = 0; id < 3; id++) for (let i = 0; i < 2; i++) write(path.join(dir, 'data', `${id}`, `${i}.jpg`), face(id, i));
  write(path.join(dir, 'elsewhere.jpg'), face(9, 0));
  const lst = path.join(dir, 'data', 'train.lst');
  const lines = [0, 1, 2].flatMap((id) => [0, 1].map((i) => `${2 * id + i}\t${id}/${i}.jpg\t${id}.000000`));
  fs.writeFileSync(lst, [...lines, `6\t../elsewhere.jpg\t2`].join('\n'));
  const escaping = run('pack', lst, path.join(dir, 'l.rec'));
  t.is(escaping.status, 1);
  t.regex(escaping.stderr, /train\.lst: line 7: \.\.\/elsewhere\.jpg is outside .*data, the list's folder \(absolute paths and '\.\.' need an explicit root\)/);
  t.false(fs.existsSync(path.join(dir, 'l.rec')));
  const rooted = run('pack', lst, path.join(dir, 'l.rec'), '--root', path.join(dir, 'data'), '--progress');
  t.is(rooted.status, 0, rooted.stderr);
  t.regex(rooted.stdout, /l\.rec and .*l\.idx: 7 images of 3 identities$/m);
  // Not a terminal: with --progress, a line now and then and one at the end.
  t.regex(rooted.stderr, /\[#{24}\] 7\/7 {2}\d+ img\/s {2}ETA 0m00s {2}bad 0\n$/);
  fs.writeFileSync(path.join(dir, 'keep.txt'), '2\n0\n');
  const sub = run('pack', path.join(dir, 'l.rec'), path.join(dir, 's.rec'), '--identities', path.join(dir, 'keep.txt'));
  t.is(sub.status, 0, sub.stderr);
  t.regex(sub.stdout, /s\.rec and .*s\.idx: 5 images of 2 identities/);
  const s = RecordDataset.open(path.join(dir, 's.rec'));
  t.deepEqual(Array.from({ length: s.length }, (_, i) => s.sample(i).label), [0, 0, 1, 1, 1]);
  t.true(s.sample(4).body.equals(face(9, 0)));
  t.regex(run('pack', lst, path.join(dir, 'z.rec'), '--identities', 'keep.txt').stderr, /pack: --identities is for a \.rec input/);
  fs.rmSync(dir, { recursive: true });
});

test('pack --landmarks stores five landmarks in each header (read back by RecordDataset, inspect and the loader); --align stores alignFace crops with the landmarks moved', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-pack-lm-'));
  const root = path.join(dir, 'faces');
  const names = ['ann/0.png', 'ann/1.png', 'bob/0.png'];
  const template = [38.2946, 51.6963, 73.5318, 51.5014, 56.0252, 71.7366, 41.5493, 92.3655, 70.7299, 92.2041];
  // Each face a little off the template: moved and scaled about (56, 70).
  const points = names.map((_, i) => template.map((v, k) => (k % 2 === 0 ? 56 + 0.9 * (v - 56) + i : 70 + 0.9 * (v - 70) - i)));
  names.forEach((n, i) => write(path.join(root, n), native.encodePng(Buffer.from(syntheticFace(4, i, 0)), 112, 112)));
  const csv = path.join(dir, 'lm.csv');
  fs.writeFileSync(csv, ['name,x1,y1,x2,y2,x3,y3,x4,y4,x5,y5', ...names.map((n, i) => [n, ...points[i]].join(','))].join('\n'));
  const out = path.join(dir, 'l.rec');
  const packed = run('pack', root, out, '--landmarks', csv);
  t.is(packed.status, 0, packed.stderr);
  const ds = RecordDataset.open(out);
  names.forEach((n, i) => {
    t.deepEqual(ds.sample(i).landmarks, points[i].map(Math.fround), n);
    t.true(ds.sample(i).body.equals(fs.readFileSync(path.join(root, n))));
  });
  t.regex(run('inspect', out, '--sheet', path.join(dir, 's.png')).stdout, /landmarks: five per image \(the first image's: 40\.1 53\.5/);
  const loader = Loader.fromRecord(out, { batch: 3, shuffle: false, flip: false, maskProbability: 1 });
  for await (const b of loader.epoch(0)) {
    t.deepEqual([...b.landmarks!], points.flat().map(Math.fround));
    b.images.dispose();
  }
  // Aligned: alignFace's crop, re-encoded at --quality; the landmarks moved into it.
  const aligned = path.join(dir, 'a.rec');
  t.is(run('pack', root, aligned, '--landmarks', csv, '--align', '--quality', '90').status, 0);
  const a = RecordDataset.open(aligned);
  names.forEach((n, i) => {
    const crop = alignFace(native.decodeImage(fs.readFileSync(path.join(root, n)), n), points[i]);
    t.true(a.sample(i).body.equals(native.encodeJpeg(crop.data, 112, 112, 90)), n);
    const [m0, m1, m2, m3, m4, m5] = alignTransform(points[i]);
    const moved = points[i].map((v, k) => (k % 2 === 0 ? m0 * v + m1 * points[i][k + 1] + m2 : m3 * points[i][k - 1] + m4 * v + m5));
    t.deepEqual(a.sample(i).landmarks, moved.map(Math.fround));
  });
  // --warp fixed: OpenCV 4.x's pixels instead of 5.x's.
  const fixed = path.join(dir, 'f.rec');
  t.is(run('pack', root, fixed, '--landmarks', csv, '--align', '--quality', '90', '--warp', 'fixed').status, 0);
  const f = RecordDataset.open(fixed);
  names.forEach((n, i) => {
    const crop = alignFace(native.decodeImage(fs.readFileSync(path.join(root, n)), n), points[i], 112, n, 'fixed');
    t.true(f.sample(i).body.equals(native.encodeJpeg(crop.data, 112, 112, 90)), `${n} --warp fixed`);
  });
  t.false(f.sample(0).body.equals(a.sample(0).body), 'the two warps store different crops');
  t.regex(run('pack', root, path.join(dir, 'w.rec'), '--landmarks', csv, '--align', '--warp', 'cubic').stderr, /pack: --warp must be float \(OpenCV 5\.x\) or fixed \(OpenCV 4\.x\), got cubic/);
  // An image the file does not name is bad, as an unreadable one is.
  fs.writeFileSync(csv, [...names.slice(0, 2).map((n, i) => [n, ...points[i]].join(','))].join('\n'));
  const missing = run('pack', root, path.join(dir, 'm.rec'), '--landmarks', csv, '--max-bad', '0');
  t.is(missing.status, 1);
  t.regex(missing.stderr, /pack: 1 of the 3 images cannot be read or decoded.*\n {2}.*faces\/bob\/0\.png: no landmarks for bob\/0\.png in .*lm\.csv/);
  t.regex(run('pack', root, path.join(dir, 'n.rec'), '--align').stderr, /pack: --align needs --landmarks FILE/);
  fs.rmSync(dir, { recursive: true });
});

test("pack's memory stays flat: 20k images (hard links to one JPEG) pack with a bounded peak RSS growth", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-pack-mem-'));
  const one = path.join(dir, 'face.jpg');
  // Noise makes a JPEG of about 27 KB: 20k of them are 530 MB, which the old pack held.
  const noise = Buffer.from(Array.from({ length: 112 * 112 * 3 }, (_, i) => (i * 2654435761) >>> 24));
  fs.writeFileSync(one, native.encodeJpeg(noise, 112, 112, 95));
  const size = fs.statSync(one).size;
  for (let id = 0; id < 200; id++) {
    fs.mkdirSync(path.join(dir, 'faces', `${id}`), { recursive: true });
    for (let i = 0; i < 100; i++) fs.linkSync(one, path.join(dir, 'faces', `${id}`, `${i}.jpg`));
  }
  const script = `const { packRecordDataset } = require(${JSON.stringify(path.join(dist, 'data', 'recordio.js'))});
const before = process.resourceUsage().maxRSS;
packRecordDataset({ folder: ${JSON.stringify(path.join(dir, 'faces'))} }, ${JSON.stringify(path.join(dir, 'm.rec'))}, { threads: 2, maxBad: 0 })
  .then((r) => console.log(JSON.stringify({ r, growth: (process.resourceUsage().maxRSS - before) / 1024 })));`;
  const p = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  t.is(p.status, 0, p.stderr);
  const { r, growth } = JSON.parse(p.stdout) as { r: { images: number }; growth: number };
  t.is(r.images, 20_000);
  t.log(`20k images of ${(size / 1024).toFixed(1)} KiB (${((20_000 * size) / 2 ** 20).toFixed(0)} MiB packed): peak RSS grew ${growth.toFixed(1)} MiB`);
  t.true(growth < 64, `peak RSS grew ${growth} MiB`);
  fs.rmSync(dir, { recursive: true });
});
