// Reading an ONNX file: the graph's nodes, inputs and outputs, and its initializers, whose
// values are read only when asked for: from raw_data, float_data / int64_data, or an
// external data file beside the model (ONNX's external-data fields: location, offset,
// length). Every size is checked against the bytes that hold it before anything is allocated.

import fs from 'node:fs';
import path from 'node:path';
import { Bytes, Fields, readBytesList, readFloats, readInt, readInts, readMessage, readString, readStrings } from './protobuf';

export const FLOAT = 1;
export const INT64 = 7;
const TYPE_NAMES: Record<number, string> = { 1: 'FLOAT', 2: 'UINT8', 3: 'INT8', 4: 'UINT16', 5: 'INT16', 6: 'INT32', 7: 'INT64', 8: 'STRING', 9: 'BOOL', 10: 'FLOAT16', 11: 'DOUBLE', 12: 'UINT32', 13: 'UINT64', 16: 'BFLOAT16' };
const ITEM_SIZE: Record<number, number> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 };

export const typeName = (t: number): string => TYPE_NAMES[t] ?? `type ${t}`;

/** Protobuf cannot address more than 2 GiB: a larger .onnx is not a valid file. */
const MAX_PROTO = 2 ** 31 - 1;

function elements(dims: readonly number[], where: string): number {
  for (const d of dims) if (!Number.isSafeInteger(d) || d < 0) throw new Error(`${where}: dimension ${d} of [${dims.join(', ')}] is not a size`);
  const n = dims.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(n)) throw new Error(`${where}: [${dims.join(', ')}] has too many elements`);
  return n;
}

type Source = { raw: Bytes } | { fields: Fields } | { file: string; offset: number; length: number };

/** An initializer (or Constant node's value); values are read on demand. */
export class OnnxTensor {
  readonly numel: number;
  constructor(
    readonly name: string,
    readonly dims: readonly number[],
    readonly dataType: number,
    private readonly source: Source,
    /** The tensor in words, for errors. */
    readonly where: string,
  ) {
    this.numel = elements(dims, where);
  }

  /** The same values seen with other dimensions (a constant reshaped in the graph). */
  reshaped(dims: readonly number[]): OnnxTensor {
    return new OnnxTensor(this.name, dims, this.dataType, this.source, this.where);
  }

  /** Bytes the values take. */
  get byteLength(): number {
    return this.numel * (ITEM_SIZE[this.dataType] ?? 0);
  }

  /** The values of a FLOAT tensor. */
  floats(): Float32Array {
    if (this.dataType !== FLOAT) throw new Error(`${this.where}: ${typeName(this.dataType)} where float32 values were expected`);
    const s = this.source;
    if ('fields' in s) {
      const v = readFloats(s.fields, 4, this.where);
      if (v.length !== this.numel) throw new Error(`${this.where}: ${v.length} values in float_data for [${this.dims.join(', ')}]`);
      return v;
    }
    this.checkBytes();
    const out = new Float32Array(this.numel);
    this.copyBytes(new Uint8Array(out.buffer));
    return out;
  }

  /** The values of an INT64 tensor (shapes, axes), as numbers. */
  ints(): number[] {
    if (this.dataType !== INT64) throw new Error(`${this.where}: ${typeName(this.dataType)} where int64 values were expected`);
    const s = this.source;
    if ('fields' in s) {
      const v = readInts(s.fields, 7, this.where);
      if (v.length !== this.numel) throw new Error(`${this.where}: ${v.length} values in int64_data for [${this.dims.join(', ')}]`);
      return v;
    }
    this.checkBytes();
    const out = new BigInt64Array(this.numel);
    this.copyBytes(new Uint8Array(out.buffer));
    return Array.from(out, Number);
  }

  /** Refuses stored values that do not fill exactly the declared dimensions: a model is
   *  sized from them, so this comes before anything is allocated. */
  check(): void {
    const s = this.source;
    if (!('fields' in s)) return this.checkBytes();
    if (this.dataType !== FLOAT) return;
    const have = (s.fields.get(4) ?? []).reduce((n, w) => n + (w.wire === 5 ? 4 : w.wire === 2 ? w.b.length : 0), 0);
    if (have !== this.byteLength) throw new Error(`${this.where}: float_data holds ${have / 4} values, [${this.dims.join(', ')}] needs ${this.numel}`);
  }

  private checkBytes(): void {
    const s = this.source;
    const have = 'raw' in s ? s.raw.length : 'file' in s ? s.length : 0;
    if (have !== this.byteLength) throw new Error(`${this.where}: ${'raw' in s ? 'raw_data' : 'external data'} holds ${have} bytes, [${this.dims.join(', ')}] ${typeName(this.dataType)} needs ${this.byteLength}`);
  }

  /** Fills `out` (checked to be the tensor's size) from raw_data or the external file. */
  private copyBytes(out: Uint8Array): void {
    const s = this.source;
    if ('raw' in s) out.set(s.raw);
    else if ('file' in s) {
      const fd = fs.openSync(s.file, 'r');
      try {
        for (let done = 0; done < out.length; ) {
          const n = fs.readSync(fd, out, done, out.length - done, s.offset + done);
          if (n === 0) throw new Error(`${this.where}: ${s.file} ends inside the tensor`);
          done += n;
        }
      } finally {
        fs.closeSync(fd);
      }
    }
  }
}

/** The data of a tensor stored outside the model: a relative path inside the model's folder. */
function externalSource(t: Fields, dir: string, where: string, needed: number): Source {
  const entries = new Map<string, string>();
  for (const e of readBytesList(t, 13, where)) {
    const f = readMessage(e, where);
    entries.set(readString(f, 1, where), readString(f, 2, where));
  }
  const location = entries.get('location');
  if (location === undefined) throw new Error(`${where}: external data without a location`);
  const file = path.resolve(dir, location);
  const rel = path.relative(dir, file);
  if (path.isAbsolute(location) || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new Error(`${where}: external data '${location}' lies outside the model's folder ${dir}; only relative paths inside it are read`);
  }
  if (!fs.existsSync(file)) throw new Error(`${where}: external data file ${file} does not exist`);
  // A link inside the folder must not lead out of it either.
  const real = fs.realpathSync(file);
  const realRel = path.relative(fs.realpathSync(dir), real);
  if (realRel.startsWith('..') || path.isAbsolute(realRel)) throw new Error(`${where}: external data '${location}' links to ${real}, outside the model's folder`);
  const num = (k: string, d: number) => {
    const v = entries.get(k);
    if (v === undefined) return d;
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new Error(`${where}: external data ${k} '${v}' is not a byte count`);
    return Number(v);
  };
  const offset = num('offset', 0);
  const length = num('length', needed);
  const size = fs.statSync(real).size;
  if (offset + length > size) throw new Error(`${where}: external data bytes ${offset}…${offset + length} lie past the end of ${file} (${size} bytes)`);
  return { file: real, offset, length };
}

function readTensor(b: Bytes, dir: string, where: string): OnnxTensor {
  const t = readMessage(b, where);
  const name = readString(t, 8, where);
  const at = `${where} '${name}'`;
  const dims = readInts(t, 1, at);
  const dataType = readInt(t, 2, 0, at);
  const raw = readBytesList(t, 9, at);
  const bytes = elements(dims, at) * (ITEM_SIZE[dataType] ?? 0);
  const source: Source = readInt(t, 14, 0, at) === 1 ? externalSource(t, dir, at, bytes) : raw.length > 0 ? { raw: raw[raw.length - 1] } : { fields: t };
  return new OnnxTensor(name, dims, dataType, source, at);
}

export type OnnxAttr = { name: string; f?: number; i?: number; s?: string; t?: OnnxTensor; floats?: Float32Array; ints?: number[] };

export interface OnnxNode {
  name: string;
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Map<string, OnnxAttr>;
}

export interface OnnxValue {
  name: string;
  elemType: number;
  /** Dimensions: a number, or the name of a symbolic one. */
  dims: (number | string)[];
}

export interface OnnxFile {
  file: string;
  /** Bytes of the .onnx file itself (external data not counted). */
  size: number;
  opset: number;
  producer: string;
  nodes: OnnxNode[];
  initializers: Map<string, OnnxTensor>;
  /** The graph inputs that are not initializers (older exports list both). */
  inputs: OnnxValue[];
  outputs: OnnxValue[];
}

function readValue(b: Bytes, where: string): OnnxValue {
  const v = readMessage(b, where);
  const name = readString(v, 1, where);
  const tensorType = readBytesList(v, 2, where).map((t) => readBytesList(readMessage(t, where), 1, where)[0]).find((t) => t !== undefined);
  if (tensorType === undefined) return { name, elemType: 0, dims: [] };
  const tt = readMessage(tensorType, where);
  const shape = readBytesList(tt, 2, where)[0];
  const dims = shape === undefined ? [] : readBytesList(readMessage(shape, where), 1, where).map((d) => {
    const f = readMessage(d, where);
    return f.has(1) ? readInt(f, 1, 0, where) : readString(f, 2, where) || '?';
  });
  return { name, elemType: readInt(tt, 1, 0, where), dims };
}

function readNode(b: Bytes, dir: string, index: number, file: string): OnnxNode {
  const n = readMessage(b, `${file}: node ${index}`);
  const op = readString(n, 4, file);
  const name = readString(n, 3, file) || `#${index}`;
  const where = `${file}: node '${name}' (${op})`;
  const attrs = new Map<string, OnnxAttr>();
  for (const ab of readBytesList(n, 5, where)) {
    const a = readMessage(ab, where);
    const attr: OnnxAttr = { name: readString(a, 1, where) };
    if (a.has(2)) attr.f = readFloats(a, 2, where)[0];
    if (a.has(3)) attr.i = readInt(a, 3, 0, where);
    if (a.has(4)) attr.s = readString(a, 4, where);
    if (a.has(5)) attr.t = readTensor(readBytesList(a, 5, where)[0], dir, `${where} attribute ${attr.name}`);
    if (a.has(7)) attr.floats = readFloats(a, 7, where);
    if (a.has(8)) attr.ints = readInts(a, 8, where);
    attrs.set(attr.name, attr);
  }
  return { name, op, inputs: readStrings(n, 1, where), outputs: readStrings(n, 2, where), attrs };
}

/** Reads `file`'s graph; initializers' values stay where they are until asked for. */
export function readOnnx(file: string): OnnxFile {
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist`);
  const size = fs.statSync(file).size;
  if (size > MAX_PROTO) throw new Error(`${file}: ${size} bytes, past protobuf's 2 GiB: not a valid ONNX file (big models keep their weights in external data)`);
  const dir = path.dirname(path.resolve(file));
  const model = readMessage(fs.readFileSync(file), file);
  const graphBytes = readBytesList(model, 7, file)[0];
  if (graphBytes === undefined) throw new Error(`${file}: no graph (not an ONNX model?)`);
  const opsets = readBytesList(model, 8, file).map((o) => readMessage(o, file));
  const main = opsets.find((o) => ['', 'ai.onnx'].includes(readString(o, 1, file)));
  const g = readMessage(graphBytes, `${file}: graph`);
  const initializers = new Map(readBytesList(g, 5, file).map((t) => readTensor(t, dir, `${file}: initializer`)).map((t) => [t.name, t]));
  if (g.has(15)) throw new Error(`${file}: sparse initializers are not read`);
  return {
    file,
    size,
    opset: main === undefined ? 0 : readInt(main, 2, 0, file),
    producer: readString(model, 2, file),
    nodes: readBytesList(g, 1, file).map((n, i) => readNode(n, dir, i, file)),
    initializers,
    inputs: readBytesList(g, 11, file).map((v) => readValue(v, `${file}: graph input`)).filter((v) => !initializers.has(v.name)),
    outputs: readBytesList(g, 12, file).map((v) => readValue(v, `${file}: graph output`)),
  };
}
