// safetensors: an 8-byte little-endian header length, a JSON header
// `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}`,
// then the raw little-endian data. Written to a temp file and renamed: never half-written.

import fs from 'node:fs';
import path from 'node:path';

export type StDType = 'F32' | 'F64' | 'I32' | 'I64' | 'F16' | 'BF16' | 'U8';

const BYTES: Record<StDType, number> = { F32: 4, F64: 8, I32: 4, I64: 8, F16: 2, BF16: 2, U8: 1 };

export interface StEntry {
  dtype: StDType;
  shape: number[];
  /** The raw bytes (a copy, aligned for typed-array views). */
  data: Uint8Array;
}

export interface StFile {
  tensors: Map<string, StEntry>;
  metadata: Record<string, string>;
}

export function readSafetensors(file: string): StFile {
  const buf = fs.readFileSync(file);
  const fail = (why: string): never => {
    throw new Error(`${file}: not a valid safetensors file: ${why}`);
  };
  if (buf.length < 8) fail(`${buf.length} bytes, shorter than the 8-byte header length`);
  const n = Number(buf.readBigUInt64LE(0));
  if (8 + n > buf.length) fail(`header length ${n} runs past the end of the ${buf.length}-byte file`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    return fail(`header is not JSON (${(e as Error).message})`);
  }
  const body = buf.subarray(8 + n);
  const tensors = new Map<string, StEntry>();
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = v as { dtype: StDType; shape: number[]; data_offsets: [number, number] };
    const size = BYTES[e.dtype];
    if (size === undefined) fail(`tensor '${name}' has unsupported dtype ${String(e.dtype)}`);
    const [begin, end] = e.data_offsets;
    const expect = e.shape.reduce((a, b) => a * b, 1) * size;
    if (end - begin !== expect || end > body.length) {
      fail(`tensor '${name}' (${e.dtype} [${e.shape.join(', ')}]) spans bytes ${begin}..${end}, expected ${expect} bytes within ${body.length}`);
    }
    tensors.set(name, { dtype: e.dtype, shape: e.shape, data: new Uint8Array(body.subarray(begin, end)) });
  }
  return { tensors, metadata: (header.__metadata__ as Record<string, string>) ?? {} };
}

/** The entry's values as numbers in a typed array of its kind (I64 → Float64Array). */
export function entryValues(e: StEntry): Float32Array | Float64Array | Int32Array | Uint8Array {
  const b = e.data.buffer.slice(e.data.byteOffset, e.data.byteOffset + e.data.byteLength);
  switch (e.dtype) {
    case 'F32':
      return new Float32Array(b);
    case 'F64':
      return new Float64Array(b);
    case 'I32':
      return new Int32Array(b);
    case 'I64':
      return Float64Array.from(new BigInt64Array(b), Number);
    case 'U8':
      return new Uint8Array(b);
    default:
      throw new Error(`safetensors: reading ${e.dtype} values is not supported`);
  }
}

export function writeSafetensors(file: string, tensors: Map<string, StEntry>, metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, e] of tensors) {
    header[name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.data.byteLength] };
    offset += e.data.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8; // keep the data 8-byte aligned, as the reference writer does
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, Buffer.concat([len, json, ...[...tensors.values()].map((e) => e.data)]));
  fs.renameSync(tmp, file);
}
