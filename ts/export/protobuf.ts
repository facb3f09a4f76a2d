// The few protobuf encodings ONNX needs: varints, 32-bit floats, length-delimited fields.
// Messages are built bottom-up as byte arrays.

export type Bytes = Uint8Array;

function varint(n: number): number[] {
  if (!Number.isSafeInteger(n)) throw new Error(`protobuf: ${n} is not a safe integer`);
  const out: number[] = [];
  // negative int64 values are encoded as their 64-bit two's complement (10 bytes)
  let v = n < 0 ? BigInt.asUintN(64, BigInt(n)) : BigInt(n);
  do {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? byte | 0x80 : byte);
  } while (v > 0n);
  return out;
}

const key = (field: number, wire: number) => varint((field << 3) | wire);

export class Message {
  private readonly parts: Bytes[] = [];

  int(field: number, v: number): this {
    this.parts.push(Uint8Array.from([...key(field, 0), ...varint(v)]));
    return this;
  }

  float(field: number, v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.parts.push(Uint8Array.from([...key(field, 5)]), b);
    return this;
  }

  bytes(field: number, b: Bytes): this {
    this.parts.push(Uint8Array.from([...key(field, 2), ...varint(b.length)]), b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, m: Message): this {
    return this.bytes(field, m.encode());
  }

  encode(): Bytes {
    const n = this.parts.reduce((s, p) => s + p.length, 0);
    const out = new Uint8Array(n);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

// Reading: a message is split into its fields without copying (length-delimited values are
// views into the input), every length checked against what is left of the input first.

export type Wire = { wire: 0; n: bigint } | { wire: 1 | 2 | 5; b: Bytes };

/** The fields of one message by number, in order; `where` names it in errors. */
export type Fields = Map<number, Wire[]>;

/** The varint at `at` and where the next value starts. */
function varintAt(buf: Bytes, at: number, where: string): [bigint, number] {
  let v = 0n;
  for (let shift = 0n; shift < 70n; shift += 7n) {
    if (at >= buf.length) throw new Error(`${where}: truncated (a varint runs past the end)`);
    const byte = buf[at++];
    v |= BigInt(byte & 0x7f) << shift;
    if (byte < 0x80) return [BigInt.asUintN(64, v), at];
  }
  throw new Error(`${where}: a varint longer than 10 bytes`);
}

export function readMessage(buf: Bytes, where: string): Fields {
  const out: Fields = new Map();
  let at = 0;
  const take = (n: number): Bytes => {
    if (n > buf.length - at) throw new Error(`${where}: truncated (a field of ${n} bytes with ${buf.length - at} left)`);
    at += n;
    return buf.subarray(at - n, at);
  };
  while (at < buf.length) {
    let k: bigint;
    [k, at] = varintAt(buf, at, where);
    const field = Number(k >> 3n);
    const wire = Number(k & 7n);
    let w: Wire;
    if (wire === 0) {
      let n: bigint;
      [n, at] = varintAt(buf, at, where);
      w = { wire, n };
    } else if (wire === 1) w = { wire, b: take(8) };
    else if (wire === 5) w = { wire, b: take(4) };
    else if (wire === 2) {
      let n: bigint;
      [n, at] = varintAt(buf, at, where);
      if (n > BigInt(buf.length - at)) throw new Error(`${where}: truncated (field ${field} declares ${n} bytes, ${buf.length - at} left)`);
      w = { wire, b: take(Number(n)) };
    } else throw new Error(`${where}: field ${field} has wire type ${wire}, which ONNX does not use`);
    const list = out.get(field);
    if (list) list.push(w);
    else out.set(field, [w]);
  }
  return out;
}

/** A signed 64-bit field value as a number; refused past 2^53. */
function int64(n: bigint, where: string): number {
  const v = BigInt.asIntN(64, n);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new Error(`${where}: ${v} is too large`);
  return Number(v);
}

/** A repeated integer field, packed or not. */
export function readInts(f: Fields, field: number, where: string): number[] {
  const out: number[] = [];
  for (const w of f.get(field) ?? []) {
    if (w.wire === 0) out.push(int64(w.n, where));
    else if (w.wire === 2) readPackedVarints(w.b, where).forEach((n) => out.push(int64(n, where)));
    else throw new Error(`${where}: field ${field} is not an integer`);
  }
  return out;
}

function readPackedVarints(b: Bytes, where: string): bigint[] {
  const out: bigint[] = [];
  for (let at = 0, v: bigint; at < b.length; out.push(v)) [v, at] = varintAt(b, at, where);
  return out;
}

/** The last value of a singular integer field, or `dflt`. */
export function readInt(f: Fields, field: number, dflt: number, where: string): number {
  const all = readInts(f, field, where);
  return all.length > 0 ? all[all.length - 1] : dflt;
}

/** A repeated float field, packed or not (little-endian f32). */
export function readFloats(f: Fields, field: number, where: string): Float32Array {
  const parts = f.get(field) ?? [];
  const n = parts.reduce((s, w) => s + (w.wire === 5 ? 1 : w.wire === 2 ? w.b.length / 4 : NaN), 0);
  if (!Number.isInteger(n)) throw new Error(`${where}: field ${field} is not a run of 32-bit floats`);
  const out = new Float32Array(n);
  const bytes = new Uint8Array(out.buffer);
  let at = 0;
  for (const w of parts) {
    bytes.set((w as { b: Bytes }).b, at);
    at += (w as { b: Bytes }).b.length;
  }
  return out;
}

/** Every length-delimited value of a field (sub-messages, bytes, strings). */
export function readBytesList(f: Fields, field: number, where: string): Bytes[] {
  return (f.get(field) ?? []).map((w) => {
    if (w.wire !== 2) throw new Error(`${where}: field ${field} is not length-delimited`);
    return w.b;
  });
}

const utf8 = new TextDecoder();

export function readStrings(f: Fields, field: number, where: string): string[] {
  return readBytesList(f, field, where).map((b) => utf8.decode(b));
}

export function readString(f: Fields, field: number, where: string): string {
  const all = readStrings(f, field, where);
  return all.length > 0 ? all[all.length - 1] : '';
}
