// IResNet (plain or BN-folded) → ONNX: one input `[N,3,S,S]` float32 RGB in [0, 255] with a
// dynamic batch, the normalisation `(x/255 − 0.5)/0.5` inside the graph, one output (the
// embedding), fp32 initializers named as the state dict. An MoE model is one graph with two
// outputs over the shared trunk, `embedding` (the unmasked head) and `masked_embedding`: the
// caller takes each face's row from the output its mask flag names. Models past protobuf's
// 2 GiB (R1.2K is 2.6 GB in f32) are saved with their weights in `<name>.onnx.data` beside.

import path from 'node:path';
import { OnnxGraph } from './onnx';
import { writeFileAtomic } from '../io/atomic';
import { BatchNorm, Conv2d, Linear, PReLU } from '../nn/layers';
import { EmbeddingHead, IBasicBlock, IResNet, IResNetMoE } from '../models/iresnet';
import { FoldedBlock, FoldedIResNet } from '../models/fold';
import type { Tensor } from '../tensor/tensor';

const pair = (v: number | readonly [number, number] | undefined, d: number): [number, number] =>
  v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : [v[0], v[1]];

class Emitter {
  constructor(readonly g: OnnxGraph) {}

  param(name: string, t: Tensor, dims: readonly number[] = t.shape): string {
    return this.g.initializer(name, dims, t.toFloat32Array());
  }

  conv(c: Conv2d, x: string, name: string): string {
    const [sh, sw] = pair(c.options.stride, 1);
    const [ph, pw] = pair(c.options.padding, 0);
    const inputs = [x, this.param(`${name}.weight`, c.weight)];
    if (c.bias) inputs.push(this.param(`${name}.bias`, c.bias));
    return this.g.node('Conv', inputs, { kernel_shape: [c.kernel, c.kernel], pads: [ph, pw, ph, pw], strides: [sh, sw] });
  }

  bn(b: BatchNorm, x: string, name: string): string {
    const ins = [b.weight, b.bias, b.runningMean, b.runningVar].map((t, i) => this.param(`${name}.${['weight', 'bias', 'running_mean', 'running_var'][i]}`, t));
    return this.g.node('BatchNormalization', [x, ...ins], { epsilon: { float: b.options.eps ?? 1e-5 } });
  }

  /** PReLU with one slope per channel of a `[N, C, H, W]` input. */
  prelu(p: PReLU, x: string, name: string): string {
    return this.g.node('PRelu', [x, this.param(`${name}.weight`, p.weight, [p.channels, 1, 1])]);
  }

  linear(l: Linear, x: string, name: string): string {
    const inputs = [x, this.param(`${name}.weight`, l.weight)];
    if (l.bias) inputs.push(this.param(`${name}.bias`, l.bias));
    return this.g.node('Gemm', inputs, { transB: 1 });
  }

  block(b: IBasicBlock, x: string, name: string): string {
    let h = this.bn(b.bn1, x, `${name}.bn1`);
    h = this.conv(b.conv1, h, `${name}.conv1`);
    h = this.bn(b.bn2, h, `${name}.bn2`);
    h = this.prelu(b.prelu, h, `${name}.prelu`);
    h = this.conv(b.conv2, h, `${name}.conv2`);
    h = this.bn(b.bn3, h, `${name}.bn3`);
    const [dc, db] = (b.downsample?.layers ?? []) as [Conv2d?, BatchNorm?];
    const id = dc && db ? this.bn(db, this.conv(dc, x, `${name}.downsample.0`), `${name}.downsample.1`) : x;
    return this.g.node('Add', [h, id]);
  }

  foldedBlock(b: FoldedBlock, x: string, name: string): string {
    let h = this.g.node('Add', [x, this.param(`${name}.shift`, b.shift, [b.shift.numel, 1, 1])]);
    h = this.conv(b.conv1, h, `${name}.conv1`);
    h = this.prelu(b.prelu, h, `${name}.prelu`);
    h = this.conv(b.conv2, h, `${name}.conv2`);
    const [dc] = (b.downsample?.layers ?? []) as [Conv2d?];
    return this.g.node('Add', [h, dc ? this.conv(dc, x, `${name}.downsample.0`) : x]);
  }
}

export interface OnnxModel {
  bytes: Uint8Array;
  /** Node types in graph order. */
  opTypes: string[];
}

/** Initializer bytes above which `saveOnnx` writes external data: protobuf's 2 GiB limit,
 *  less room for the graph itself. */
export const EXTERNAL_DATA_ABOVE = 2 ** 31 - 2 ** 26;

export function exportIResNet(model: IResNet | FoldedIResNet, { opset = 13 } = {}): OnnxModel {
  const g = graphOf(model, opset);
  if (g.initializerBytes > EXTERNAL_DATA_ABOVE) throw new Error(`export: ${g.initializerBytes} bytes of weights do not fit one protobuf (2 GiB); save with external data (saveOnnx)`);
  return { bytes: g.encode({ opset }), opTypes: g.opTypes };
}

export interface SavedOnnx {
  /** The .onnx file and, when written, its external data file. */
  files: string[];
  /** Bytes of both together. */
  bytes: number;
  external: boolean;
  opTypes: string[];
}

/** Writes the model to `file`, its weights in `<file>.data` beside it when they exceed
 *  `above` bytes or `externalData` is 'always'. Each file is written atomically and
 *  durably (ts/io/atomic.ts), the data first. */
export function saveOnnx(model: IResNet | FoldedIResNet, file: string, { opset = 13, externalData = 'auto' as 'auto' | 'always', above = EXTERNAL_DATA_ABOVE } = {}): SavedOnnx {
  const g = graphOf(model, opset);
  const external = externalData === 'always' || g.initializerBytes > above;
  const location = `${path.basename(file)}.data`;
  const enc = external ? g.encodeExternal(location, { opset }) : { model: g.encode({ opset }), data: [], dataBytes: 0 };
  const files = [file];
  if (external) {
    const dataFile = path.join(path.dirname(file), location);
    writeFileAtomic(dataFile, enc.data);
    files.push(dataFile);
  }
  writeFileAtomic(file, [enc.model]);
  return { files, bytes: enc.model.length + enc.dataBytes, external, opTypes: g.opTypes };
}

function graphOf(model: IResNet | FoldedIResNet, opset: number): OnnxGraph {
  if (opset < 13) throw new Error(`export: opset ${opset} is too old; 13 or newer is supported`);
  const g = new OnnxGraph();
  const e = new Emitter(g);
  const s = model.config.inputSize;
  const input = g.input('input', ['batch', 3, s, s]);
  const scaled = g.node('Mul', [input, g.initializer('norm.scale', [], Float32Array.of(1 / 127.5))]);
  let h = g.node('Sub', [scaled, g.initializer('norm.shift', [], Float32Array.of(1))]);
  h = e.conv(model.conv1, h, 'conv1');
  if (model instanceof IResNet) h = e.bn(model.bn1, h, 'bn1');
  h = e.prelu(model.prelu, h, 'prelu');
  model.stages.forEach((stage, i) =>
    stage.layers.forEach((b, j) => {
      const name = `layer${i + 1}.${j}`;
      h = b instanceof FoldedBlock ? e.foldedBlock(b, h, name) : e.block(b as IBasicBlock, h, name);
    }),
  );
  const heads: [EmbeddingHead, string, string][] = [];
  if (model instanceof IResNet) heads.push([model.head, '', 'embedding']);
  if (model instanceof IResNetMoE) heads.push([model.masked, 'masked.', 'masked_embedding']);
  for (const [head, prefix, output] of heads) {
    let y = e.bn(head.bn2, h, `${prefix}bn2`);
    y = g.node('Flatten', [y], { axis: 1 });
    y = e.linear(head.fc, y, `${prefix}fc`);
    y = e.bn(head.features, y, `${prefix}features`);
    g.output(g.node('Identity', [y], {}, output), ['batch', model.config.embedding]);
  }
  if (model instanceof FoldedIResNet) {
    h = e.linear(model.fc, g.node('Flatten', [h], { axis: 1 }), 'fc');
    g.output(g.node('Identity', [h], {}, 'embedding'), ['batch', model.config.embedding]);
  }
  return g;
}
