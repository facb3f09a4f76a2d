import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readSafetensors, writeSafetensors, entryValues, StEntry } from '../ts';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-st-'));

test('safetensors round-trips tensors and metadata, and leaves no temp file', (t) => {
  const dir = tmp();
  const file = path.join(dir, 'a.safetensors');
  const w = Float32Array.from([1.5, -2, 3.25, 4, 5, 6]);
  const labels = Int32Array.from([7, -1]);
  const m = new Map<string, StEntry>([
    ['w', { dtype: 'F32', shape: [2, 3], data: new Uint8Array(w.buffer) }],
    ['labels', { dtype: 'I32', shape: [2], data: new Uint8Array(labels.buffer) }],
  ]);
  writeSafetensors(file, m, { model: 'r50' });
  const back = readSafetensors(file);
  t.deepEqual(back.metadata, { model: 'r50' });
  t.deepEqual([...entryValues(back.tensors.get('w')!)], [...w]);
  t.deepEqual(back.tensors.get('w')!.shape, [2, 3]);
  t.deepEqual([...entryValues(back.tensors.get('labels')!)], [7, -1]);
  t.deepEqual(fs.readdirSync(dir), ['a.safetensors']);
});

test('a truncated or corrupt safetensors file is refused naming the file and the problem', (t) => {
  const dir = tmp();
  const file = path.join(dir, 'bad.safetensors');
  fs.writeFileSync(file, Buffer.from([1, 2, 3]));
  t.throws(() => readSafetensors(file), { message: `${file}: not a valid safetensors file: 3 bytes, shorter than the 8-byte header length` });
  const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  fs.writeFileSync(file, Buffer.concat([len, header, Buffer.alloc(8)]));
  t.throws(() => readSafetensors(file), { message: /tensor 'w' \(F32 \[4\]\) spans bytes 0\.\.16, expected 16 bytes within 8/ });
});
