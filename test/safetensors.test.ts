import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createModel, entryValues, loadCheckpoint, readSafetensors, saveCheckpoint, StEntry, writeSafetensors } from '../ts';

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

test('a crafted header (negative offsets, a shape that is not a list, a dtype from Object.prototype) is refused before it places anything', (t) => {
  const file = path.join(tmp(), 'crafted.safetensors');
  const write = (header: unknown) => {
    const json = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    fs.writeFileSync(file, Buffer.concat([len, json, Buffer.alloc(16)]));
  };
  write({ w: { dtype: 'F32', shape: [2], data_offsets: [-8, 0] } });
  t.throws(() => readSafetensors(file), { message: `${file}: not a valid safetensors file: tensor 'w' needs a shape and two data_offsets of integers ≥ 0` });
  write({ w: { dtype: 'F32', shape: '2', data_offsets: [0, 8] } });
  t.throws(() => readSafetensors(file), { message: /tensor 'w' needs a shape and two data_offsets/ });
  write({ w: { dtype: 'constructor', shape: [2], data_offsets: [0, 8] } });
  t.throws(() => readSafetensors(file), { message: /tensor 'w' has unsupported dtype constructor/ });
  write([1, 2]);
  t.throws(() => readSafetensors(file), { message: /header is not a JSON object/ });
  write({ __metadata__: { network: 18 } });
  t.throws(() => readSafetensors(file), { message: /__metadata__ must map names to strings/ });
});

test("weights of another network lead with the network the file's metadata names, and the list is capped", (t) => {
  const file = path.join(tmp(), 'tiny.safetensors');
  const tiny = createModel('tiny');
  saveCheckpoint(tiny, file, { network: 'tiny' });
  const small = createModel('small');
  const e = t.throws(() => loadCheckpoint(small, file));
  const lines = e!.message.split('\n');
  t.regex(lines[0], new RegExp(`^${file.replace(/[.]/g, '\\.')} holds a tiny \\(its metadata says so\\) and does not fit the model: \\d+ differences:$`));
  t.true(lines.length <= 1 + 3 * 6 + 1, `${lines.length} lines`);
  t.regex(lines.at(-1)!, /^ {2}… and \d+ more$/);
  t.true(lines.some((l) => /^ {2}missing /.test(l)), 'each kind of difference is shown');
  [tiny, small].forEach((m) => m.dispose());
});
