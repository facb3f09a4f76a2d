// An ONNX graph builder: nodes, fp32 initializers, typed inputs/outputs, serialised as a
// ModelProto (field numbers from onnx.proto). Only what our exporters use.

import { Message } from './protobuf';

const FLOAT = 1;
const INT64 = 7;

export type Attr = number | number[] | { float: number };

export class OnnxGraph {
  private readonly nodes: Message[] = [];
  private readonly inits: Message[] = [];
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
    const t = new Message();
    dims.forEach((d) => t.int(1, d));
    t.int(2, FLOAT).string(8, name).bytes(9, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    this.inits.push(t);
    return name;
  }

  int64Initializer(name: string, values: readonly number[]): string {
    const t = new Message().int(1, values.length).int(2, INT64).string(8, name);
    const raw = new BigInt64Array(values.map((v) => BigInt(v)));
    t.bytes(9, new Uint8Array(raw.buffer));
    this.inits.push(t);
    return name;
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
    const g = new Message();
    this.nodes.forEach((n) => g.message(1, n));
    g.string(2, graphName);
    this.inits.forEach((t) => g.message(5, t));
    this.inputs.forEach((v) => g.message(11, v));
    this.outputs.forEach((v) => g.message(12, v));
    return new Message()
      .int(1, 7)
      .string(2, producer)
      .message(7, g)
      .message(8, new Message().string(1, '').int(2, opset))
      .encode();
  }
}
