// JPEGs reach training and evaluation as libjpeg-turbo decodes them with its defaults, as PIL
// and OpenCV do: the fixtures of make_jpeg_fixtures.py through the addon's decoder, and a real
// 112² photograph through the loader, equal to PIL's pixels.

import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeRecordDataset } from '../ts';
import { native } from '../ts/native';
import { Loader } from '../ts/data/loader';

const fx = (n: string) => path.join(__dirname, 'fixtures', n);
const names = fs.readFileSync(fx('jpeg_expected.txt'), 'utf8').trim().split('\n').map((l) => l.split(' ')[0]);

test('every JPEG fixture decodes to the pixels PIL gives', (t) => {
  t.is(names.length, 10);
  for (const name of names) {
    const jpg = native.decodeImage(fs.readFileSync(fx(`jpeg_${name}.jpg`)), name);
    const pil = native.decodeImage(fs.readFileSync(fx(`jpeg_${name}.png`)), name);
    t.deepEqual([jpg.width, jpg.height], [pil.width, pil.height], name);
    t.true(jpg.data.equals(pil.data), `${name}: pixels differ from PIL's`);
  }
  t.throws(() => native.decodeImage(fs.readFileSync(fx('jpeg_cmyk.jpg')), 'c.jpg'), { message: 'c.jpg: a CMYK JPEG, not decoded: convert it to RGB' });
  t.throws(() => native.decodeImage(fs.readFileSync(fx('jpeg_12bit.jpg')), 't.jpg'), { message: 't.jpg: a 12-bit JPEG, not decoded: only 8-bit JPEGs are' });
});

test('the loader feeds training the photograph as PIL decodes it', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-jpeg-'));
  const rec = path.join(dir, 'a.rec');
  writeRecordDataset(rec, [{ label: 0, body: fs.readFileSync(fx('jpeg_astronaut.jpg')) }]);
  const pil = native.decodeImage(fs.readFileSync(fx('jpeg_astronaut.png')), 'png');
  let seen = 0;
  for await (const b of Loader.fromRecord(rec, { batch: 1, shuffle: false, flip: false }).epoch(0)) {
    const px = b.images.toFloat32Array();
    const plane = 112 * 112;
    let worst = 0;
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(px[c * plane + i] - (pil.data[i * 3 + c] / 255 - 0.5) / 0.5));
    }
    t.true(worst < 1e-6, `CHW input differs from PIL's pixels by ${worst} (one level is ${2 / 255})`);
    b.images.dispose();
    seen++;
  }
  t.is(seen, 1);
  fs.rmSync(dir, { recursive: true, force: true });
});
