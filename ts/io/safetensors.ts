// safetensors: an 8-byte little-endian header length, a JSON header
// `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}`,
// then the raw little-endian data. Written atomically and durably (io/atomic.ts): never half-written.

import fs from 'node:fs';
import { writeFileAtomic } from './atomic';

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

interface Located {
  dtype: StDType;
  shape: number[];
  begin: number;
  end: number;
}

/** Checks the header (its JSON, dtypes, spans within `bodyLength`); returns the tensors'
 *  places in the body and the metadata. */
function parseHeader(json: Buffer, bodyLength: number, fail: (why: string) => never): { located: Map<string, Located>; metadata: Record<string, string> } {
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(json.toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    return fail(`header is not JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) return fail('header is not a JSON object');
  const located = new Map<string, Located>();
  const sizes = (v: unknown) => Array.isArray(v) && v.every((n) => Number.isSafeInteger(n) && n >= 0);
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    // Shapes and offsets are checked before they size or place anything.
    const e = v as { dtype: StDType; shape: number[]; data_offsets: [number, number] } | null;
    if (!sizes(e?.shape) || !sizes(e?.data_offsets) || e!.data_offsets.length !== 2) fail(`tensor '${name}' needs a shape and two data_offsets of integers ≥ 0`);
    const size = Object.hasOwn(BYTES, e!.dtype) ? BYTES[e!.dtype] : undefined;
    if (size === undefined) fail(`tensor '${name}' has unsupported dtype ${String(e!.dtype)}`);
    const [begin, end] = e!.data_offsets;
    const expect = e!.shape.reduce((a, b) => a * b, 1) * size;
    if (end - begin !== expect || end > bodyLength) {
      fail(`tensor '${name}' (${e!.dtype} [${e!.shape.join(', ')}]) spans bytes ${begin}..${end}, expected ${expect} bytes within ${bodyLength}`);
    }
    located.set(name, { dtype: e!.dtype, shape: e!.shape, begin, end });
  }
  const metadata = header.__metadata__ ?? {};
  if (typeof metadata !== 'object' || metadata === null || Object.values(metadata).some((x) => typeof x !== 'string')) fail('__metadata__ must map names to strings');
  return { located, metadata: metadata as Record<string, string> };
}

const failer = (file: string) => (why: string): never => {
  throw new Error(`${file}: not a valid safetensors file: ${why}`);
};

export function readSafetensors(file: string): StFile {
  const buf = fs.readFileSync(file);
  const fail = failer(file);
  if (buf.length < 8) fail(`${buf.length} bytes, shorter than the 8-byte header length`);
  const n = Number(buf.readBigUInt64LE(0));
  if (8 + n > buf.length) fail(`header length ${n} runs past the end of the ${buf.length}-byte file`);
  const body = buf.subarray(8 + n);
  const { located, metadata } = parseHeader(buf.subarray(8, 8 + n), body.length, fail);
  const tensors = new Map<string, StEntry>();
  for (const [name, e] of located) tensors.set(name, { dtype: e.dtype, shape: e.shape, data: new Uint8Array(body.subarray(e.begin, e.end)) });
  return { tensors, metadata };
}

/** Rows of one F32 `[rows, dim]` tensor of a file read on demand, without loading the file
 *  (precomputed embeddings of a whole training set do not fit in memory). */
export class SafetensorsRows {
  readonly rows: number;
  readonly dim: number;
  readonly metadata: Record<string, string>;
  private readonly fd: number;
  private readonly base: number;

  constructor(readonly file: string, name: string) {
    const fail = failer(file);
    this.fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(this.fd).size;
    const len = Buffer.alloc(8);
    if (fs.readSync(this.fd, len, 0, 8, 0) < 8) fail(`${size} bytes, shorter than the 8-byte header length`);
    const n = Number(len.readBigUInt64LE(0));
    if (8 + n > size) fail(`header length ${n} runs past the end of the ${size}-byte file`);
    const json = Buffer.alloc(n);
    fs.readSync(this.fd, json, 0, n, 8);
    const { located, metadata } = parseHeader(json, size - 8 - n, fail);
    const e = located.get(name);
    if (e === undefined || e.dtype !== 'F32' || e.shape.length !== 2) fail(`expected an F32 [rows, dim] tensor '${name}', found ${e === undefined ? 'none' : `${e.dtype} [${e.shape.join(', ')}]`}`);
    [this.rows, this.dim] = e!.shape;
    this.metadata = metadata;
    this.base = 8 + n + e!.begin;
  }

  /** Rows `indices`, concatenated. */
  read(indices: ArrayLike<number>): Float32Array {
    const out = new Float32Array(indices.length * this.dim);
    const bytes = new Uint8Array(out.buffer);
    const rowBytes = 4 * this.dim;
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k];
      if (!(i >= 0 && i < this.rows)) throw new Error(`${this.file}: row ${i} requested, the file has ${this.rows}`);
      fs.readSync(this.fd, bytes, k * rowBytes, rowBytes, this.base + i * rowBytes);
    }
    return out;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
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
  writeFileAtomic(file, [len, json, ...[...tensors.values()].map((e) => e.data)]);
}
