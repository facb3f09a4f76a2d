// An ONNX graph builder: nodes, fp32 initializers, typed inputs/outputs, serialised as a
// ModelProto (field numbers from onnx.proto). Only what our exporters use. Protobuf cannot
// hold a message over 2 GiB, so big models keep their initializers in an external data file
// beside the model (ONNX's standard external-data fields: location, offset, length).

import { Message } from './protobuf';

const FLOAT = 1;
const INT64 = 7;

export type Attr = number | number[] | { float: number };

interface Initializer {
  name: string;
  dims: readonly number[];
  type: number;
  data: Uint8Array;
}

/** Tensors smaller than this stay inside the model when the rest goes to external data
 *  (onnx's own size_threshold). */
const INLINE_BELOW = 1024;
/** External tensors start at page boundaries, so onnxruntime can map them. */
const ALIGN = 4096;

export interface EncodedModel {
  model: Uint8Array;
  /** The external data file's contents in order (empty when everything is inline). */
  data: Uint8Array[];
  dataBytes: number;
}

export class OnnxGraph {
  private readonly nodes: Message[] = [];
  private readonly inits: Initializer[] = [];
  private readonly inputs: Message[] = [];
  private readonly outputs: Message[] = [];
  private count = 0;
  /** Node types used, for tests and reports. */
  readonly opTypes: string[] = [];

  /** A fresh value name with a readable prefix. */
  name(prefix: string): string {
    return `${prefix}_${this.count++}`;
  }

  initializer(name: string, dims: readonly number[], values: Float32Array): string {
    this.inits.push({ name, dims, type: FLOAT, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) });
    return name;
  }

  int64Initializer(name: string, values: readonly number[]): string {
    const raw = new BigInt64Array(values.map((v) => BigInt(v)));
    this.inits.push({ name, dims: [values.length], type: INT64, data: new Uint8Array(raw.buffer) });
    return name;
  }

  /** Bytes of every initializer's values. */
  get initializerBytes(): number {
    return this.inits.reduce((s, t) => s + t.data.length, 0);
  }

  node(op: string, inputs: string[], attrs: Record<string, Attr> = {}, output = this.name(op.toLowerCase())): string {
    const n = new Message();
    inputs.forEach((i) => n.string(1, i));
    n.string(2, output).string(3, `${op}_${this.nodes.length}`).string(4, op);
    for (const [k, v] of Object.entries(attrs)) {
      const a = new Message().string(1, k);
      if (Array.isArray(v)) {
        v.forEach((x) => a.int(8, x));
        a.int(20, 7); // INTS
      } else if (typeof v === 'number') {
        a.int(3, v).int(20, 2); // INT
      } else {
        a.float(2, v.float).int(20, 1); // FLOAT
      }
      n.message(5, a);
    }
    this.nodes.push(n);
    this.opTypes.push(op);
    return output;
  }

  /** A float input/output; a string dimension is symbolic (dynamic). */
  private valueInfo(name: string, dims: (number | string)[]): Message {
    const shape = new Message();
    for (const d of dims) shape.message(1, typeof d === 'string' ? new Message().string(2, d) : new Message().int(1, d));
    const tensorType = new Message().int(1, FLOAT).message(2, shape);
    return new Message().string(1, name).message(2, new Message().message(1, tensorType));
  }

  input(name: string, dims: (number | string)[]): string {
    this.inputs.push(this.valueInfo(name, dims));
    return name;
  }

  output(name: string, dims: (number | string)[]): void {
    this.outputs.push(this.valueInfo(name, dims));
  }

  /** The serialised ModelProto (IR version 7, default-domain opset `opset`). */
  encode({ opset = 13, producer = 'maskfr', graphName = 'maskfr' } = {}): Uint8Array {
    return this.encodeWith(null, { opset, producer, graphName }).model;
  }

  /** The ModelProto with every initializer of 1 KiB or more in external data: `location`
   *  is the data file's name, relative to the model's folder. */
  encodeExternal(location: string, { opset = 13, producer = 'maskfr', graphName = 'maskfr' } = {}): EncodedModel {
    return this.encodeWith(location, { opset, producer, graphName });
  }

  private encodeWith(location: string | null, { opset, producer, graphName }: { opset: number; producer: string; graphName: string }): EncodedModel {
    const g = new Message();
    this.nodes.forEach((n) => g.message(1, n));
    g.string(2, graphName);
    const data: Uint8Array[] = [];
    let offset = 0;
    for (const init of this.inits) {
      const t = new Message();
      init.dims.forEach((d) => t.int(1, d));
      t.int(2, init.type).string(8, init.name);
      if (location === null || init.data.length < INLINE_BELOW) t.bytes(9, init.data);
      else {
        const pad = (ALIGN - (offset % ALIGN)) % ALIGN;
        if (pad > 0) data.push(new Uint8Array(pad));
        offset += pad;
        const entry = (k: string, v: string | number) => new Message().string(1, k).string(2, String(v));
        t.message(13, entry('location', location)).message(13, entry('offset', offset)).message(13, entry('length', init.data.length));
        t.int(14, 1); // data_location: EXTERNAL
        data.push(init.data);
        offset += init.data.length;
      }
      g.message(5, t);
    }
    this.inputs.forEach((v) => g.message(11, v));
    this.outputs.forEach((v) => g.message(12, v));
    const model = new Message()
      .int(1, 7)
      .string(2, producer)
      .message(7, g)
      .message(8, new Message().string(1, '').int(2, opset))
      .encode();
    return { model, data, dataBytes: offset };
  }
}
