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
