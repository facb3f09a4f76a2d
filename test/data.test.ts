import test from 'ava';
import fs from 'node:fs';
import zlib from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { RecordDataset, writeRecordDataset, readVerificationBin, parseVerificationBin } from '../ts';
import { native } from '../ts/native';
import { Loader } from '../ts/data/loader';
import { MAX_IMAGE_FILE_BYTES, readImageFolder } from '../ts/data/image-folder';
import { openTrainingData } from '../ts/data/training-data';

const fx = (n: string) => path.join(__dirname, 'fixtures', n);

test('an InsightFace .rec from an independent writer reads back: ranges, labels, pixels', (t) => {
  const ds = RecordDataset.open(fx('recordio_small.rec'));
  t.is(ds.length, 6);
  t.deepEqual(ds.identities, [
    { label: 0, start: 1, end: 3 },
    { label: 1, start: 3, end: 5 },
    { label: 2, start: 5, end: 7 },
  ]);
  const expected = fs.readFileSync(fx('recordio_expected.txt'), 'utf8').trim().split('\n');
  expected.forEach((line, i) => {
    const [key, label, w, h, hex] = line.split(' ');
    const s = ds.sample(i);
    t.is(s.key, Number(key));
    t.is(s.label, Number(label));
    const img = native.decodeImage(s.body, `${ds.path} record ${s.key}`);
    t.deepEqual([img.width, img.height, img.data.toString('hex')], [Number(w), Number(h), hex]);
  });
  t.throws(() => ds.sample(6), { message: /image 6 is outside \[0, 6\)/ });
});

test('pack → read gives back the same JPEG bytes and the same decoded pixels', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-rec-'));
  const rgb = Buffer.from(Array.from({ length: 20 * 10 * 3 }, (_, i) => (i * 13) % 256));
  const samples = [2, 0, 2, 1].map((label, i) => ({ label, body: native.encodeJpeg(rgb.map((v) => (v + 40 * i) % 256) as Buffer, 20, 10, 90) }));
  writeRecordDataset(path.join(dir, 'd.rec'), samples);
  t.deepEqual(fs.readdirSync(dir).sort(), ['d.idx', 'd.rec']);
  const ds = RecordDataset.open(path.join(dir, 'd.rec'));
  t.deepEqual(ds.identities?.map((i) => [i.start, i.end]), [[1, 2], [2, 3], [3, 5]]);
  const byLabel = [...samples].sort((a, b) => a.label - b.label);
  for (let i = 0; i < 4; i++) {
    const s = ds.sample(i);
    t.is(s.label, byLabel[i].label);
    t.true(s.body.equals(byLabel[i].body));
    t.true(native.decodeImage(s.body, 'a').data.equals(native.decodeImage(byLabel[i].body, 'b').data));
  }
});

test('verification .bin pickles from Python 3 and Python 2 parse to images and pairs', (t) => {
  for (const f of ['bin_py3.bin', 'bin_py2.bin']) {
    const v = readVerificationBin(fx(f));
    t.deepEqual(v.issame, [true, false], f);
    t.deepEqual(v.images.map((b) => b.length), [10, 11, 12, 300], f);
    t.is(v.images[1][0], 1);
  }
});

test('a pickle with code-running opcodes is refused, never executed', (t) => {
  fs.rmSync('/tmp/maskfr-pwned', { force: true });
  t.throws(() => readVerificationBin(fx('bin_evil.bin')), { message: /bin_evil\.bin: not an InsightFace verification pickle: opcode GLOBAL at byte \d+ is not allowed/ });
  t.false(fs.existsSync('/tmp/maskfr-pwned'));
  t.throws(() => readVerificationBin(fx('bin_codecs.bin')), { message: /opcode GLOBAL at byte \d+ is not allowed/ });
  const cut = fs.readFileSync(fx('bin_py3.bin')).subarray(0, 40);
  t.throws(() => parseVerificationBin(cut, 'cut.bin'), { message: /cut\.bin: .*truncated at byte/ });
});

test('an image whose header declares 13000² pixels is refused from the header, in a moment', (t) => {
  const png = native.encodePng(Buffer.alloc(8 * 8 * 3, 90), 8, 8);
  png.writeUInt32BE(13000, 16); // IHDR width, height
  png.writeUInt32BE(13000, 20);
  png.writeUInt32BE(zlib.crc32(png.subarray(12, 29)), 29);
  const t0 = performance.now();
  t.throws(() => native.decodeImage(png, 'bomb.png'), { message: 'bomb.png: the header declares 13000x13000 pixels, more than the 4096x4096 decoded at most' });
  t.true(performance.now() - t0 < 500, 'no pixel decoded');
  t.is(native.MAX_IMAGE_SIDE, 4096);
});

test('an image file above 64 MiB is refused before it is read, naming it, by the folder\'s reader and the training loader alike', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-bigfile-'));
  fs.mkdirSync(path.join(root, 'a'));
  const big = path.join(root, 'a', 'big.jpg');
  fs.closeSync(fs.openSync(big, 'w'));
  fs.truncateSync(big, MAX_IMAGE_FILE_BYTES + 1); // sparse: reading it would allocate the whole size
  const want = `${big}: ${MAX_IMAGE_FILE_BYTES + 1} bytes, more than an image file may have (64 MiB)`;
  t.throws(() => readImageFolder(root).sample(0), { message: want });
  const loader = Loader.fromFolder(root, { batch: 1, threads: 1, shuffle: false });
  const e = await t.throwsAsync(async () => {
    for await (const b of loader.epoch(0)) b.images.dispose();
  });
  t.true(e!.message.includes(want), e!.message);
});

test('an image folder as training data: its index in Rust, samples and labels by position, the loader over the same index', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-folder-data-'));
  const png = (v: number) => native.encodePng(Buffer.alloc(8 * 8 * 3, v), 8, 8);
  for (const [who, n] of [['b', 1], ['a', 2]] as const) {
    fs.mkdirSync(path.join(root, who));
    for (let i = 0; i < n; i++) fs.writeFileSync(path.join(root, who, `${i}.png`), png(10 * n + i));
  }
  const data = openTrainingData(root);
  t.deepEqual([data.length, data.classes], [3, 2]);
  t.deepEqual([0, 1, 2].map((i) => data.sample(i).label), [0, 0, 1]);
  t.true(data.sample(2).image.equals(png(10)));
  const f = readImageFolder(root);
  t.deepEqual([f.identity(1), f.path(1)], ['b', path.join(root, 'a', '1.png')]);
  t.throws(() => f.sample(3), { message: /image 3 is outside \[0, 3\)/ });
  let labels: number[] = [];
  for await (const b of data.loader({ batch: 3, size: 8, shuffle: false, flip: false }).epoch(0)) {
    labels = [...b.labels];
    b.images.dispose();
  }
  t.deepEqual(labels, [0, 0, 1]);
  fs.rmSync(root, { recursive: true });
});
