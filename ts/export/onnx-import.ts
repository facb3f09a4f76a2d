// IResNet ONNX files → our IResNet: insightface's model zoo and arcface_torch's torch2onnx
// exports (each conv's following BN fused into it by the exporter, the pre-conv BNs kept as
// BatchNormalization, the input normalised outside the graph, any input name), older exports
// that keep every BN, and our own exports (normalisation inside the graph, plain or folded).
//
// The layout is read from the graph's structure, never its names: depths from the blocks
// between stride-2 convs, widths from the convs' shapes, the embedding from the fc. A graph
// that keeps every BN becomes an IResNet (its state dict in arcface_torch's names, usable to
// initialise training); any fused BN makes it a FoldedIResNet: the graph's values are written
// into an IResNet whose missing BNs are identities (a fused conv's bias as the BN's shift),
// that is folded, and the tensors the graph already holds in folded form are then copied as
// they are, so a folded export re-imports bit for bit.

import { Tensor, tensor } from '../tensor/tensor';
import * as ops from '../tensor/ops';
import { IResNet, IResNetConfig, MODELS, StridePlacement } from '../models/iresnet';
import { FoldedIResNet, foldBatchNorm } from '../models/fold';
import { nonFiniteAt } from '../models/weights';
import { FLOAT, OnnxFile, OnnxNode, OnnxTensor, readOnnx, typeName } from './onnx-read';

/** Our BatchNorm's ε; a graph's other ε is moved into the running variance. */
const EPS = 1e-5;
/** The normalisation our models expect: x/127.5 − 1 on RGB in [0, 255]. */
const NORM = { scale: 1 / 127.5, shift: -1 };

interface ConvInfo {
  node: OnnxNode;
  weight: OnnxTensor;
  bias?: OnnxTensor;
  out: number;
  in: number;
  kernel: number;
  stride: number;
}

interface BnInfo {
  node: OnnxNode;
  scale: OnnxTensor;
  bias: OnnxTensor;
  mean: OnnxTensor;
  var: OnnxTensor;
  eps: number;
}

interface BlockInfo {
  /** Before conv1: a BatchNormalization, or (our folded export) the add of a constant shift. */
  pre: { bn: BnInfo } | { shift: OnnxTensor };
  conv1: ConvInfo;
  bn2?: BnInfo;
  prelu: OnnxTensor;
  conv2: ConvInfo;
  bn3?: BnInfo;
  down?: { conv: ConvInfo; bn?: BnInfo };
}

interface Layout {
  config: IResNetConfig;
  /** True when the graph normalises its input itself (our exports). */
  normalisesInput: boolean;
  inputName: string;
  stem: { conv: ConvInfo; bn?: BnInfo; prelu: OnnxTensor };
  blocks: BlockInfo[][];
  head: { bn2?: BnInfo; fc: { weight: OnnxTensor; bias?: OnnxTensor; transposed: boolean }; features?: BnInfo };
}

/** Ops that pass a value through unchanged in inference. */
const PASS = new Set(['Identity', 'Dropout']);
/** Ops that, on a constant, give the same values in another shape. */
const RESHAPE = new Set(['Identity', 'Unsqueeze', 'Squeeze', 'Reshape', 'Flatten']);

class Graph {
  private readonly consts = new Map<string, OnnxTensor>();
  private readonly alias = new Map<string, string>();
  private readonly users = new Map<string, OnnxNode[]>();

  constructor(readonly f: OnnxFile) {
    f.initializers.forEach((t, k) => this.consts.set(k, t));
    for (const n of f.nodes) {
      const value = n.attrs.get('value')?.t;
      if (n.op === 'Constant' && value !== undefined) this.consts.set(n.outputs[0], value);
      else if (RESHAPE.has(n.op) && this.consts.has(n.inputs[0])) {
        const c = this.consts.get(n.inputs[0])!;
        this.consts.set(n.outputs[0], n.op === 'Identity' ? c : c.reshaped([c.numel]));
      } else if (PASS.has(n.op)) this.alias.set(n.outputs[0], this.resolve(n.inputs[0]));
      else for (const i of n.inputs) if (i !== '' && !this.consts.has(i)) this.usersOf(this.resolve(i)).push(n);
    }
    this.consts.forEach((t) => t.check());
  }

  resolve(v: string): string {
    return this.alias.get(v) ?? v;
  }

  usersOf(v: string): OnnxNode[] {
    let u = this.users.get(v);
    if (u === undefined) this.users.set(v, (u = []));
    return u;
  }

  isConst(v: string): boolean {
    return this.consts.has(v);
  }

  constant(n: OnnxNode, i: number, what: string): OnnxTensor {
    const c = this.consts.get(n.inputs[i] ?? '');
    if (c === undefined) throw this.refuse(n, `its ${what} (input ${i}) is not a constant`);
    if (c.dataType !== FLOAT) throw this.refuse(n, `its ${what} '${c.name}' is ${typeName(c.dataType)}; float32 weights are read`);
    return c;
  }

  /** The node's value output, aliases resolved. */
  out(n: OnnxNode): string {
    return this.resolve(n.outputs[0]);
  }

  refuse(n: OnnxNode, why: string): Error {
    return new Error(`${this.f.file}: not an IResNet as maskfr reads them: node '${n.name}' (${n.op}): ${why}`);
  }

  /** The one node that reads `v`, which must be one of `ops`. */
  next(v: string, ops: string[], after: string): OnnxNode {
    const u = this.usersOf(v);
    if (u.length !== 1) throw new Error(`${this.f.file}: not an IResNet as maskfr reads them: ${after} feeds ${u.length} nodes (${u.map((n) => `'${n.name}' (${n.op})`).join(', ') || 'none'}), ${ops.join(' or ')} expected`);
    if (!ops.includes(u[0].op)) throw this.refuse(u[0], `${ops.join(' or ')} expected after ${after}`);
    return u[0];
  }
}

const attrInts = (n: OnnxNode, k: string): number[] | undefined => n.attrs.get(k)?.ints;
const attrInt = (n: OnnxNode, k: string, d: number): number => n.attrs.get(k)?.i ?? d;

function conv(g: Graph, n: OnnxNode): ConvInfo {
  const weight = g.constant(n, 1, 'weight');
  if (weight.dims.length !== 4 || weight.dims[2] !== weight.dims[3]) throw g.refuse(n, `weight [${weight.dims.join(', ')}] is not a square 2-d kernel`);
  const [out, inC, kernel] = weight.dims;
  const bias = n.inputs[2] ? g.constant(n, 2, 'bias') : undefined;
  if (bias && bias.numel !== out) throw g.refuse(n, `bias of ${bias.numel} values for ${out} channels`);
  const strides = attrInts(n, 'strides') ?? [1, 1];
  const pads = attrInts(n, 'pads') ?? [0, 0, 0, 0];
  const pad = (kernel - 1) / 2;
  const problems = [
    attrInt(n, 'group', 1) !== 1 && 'group ≠ 1',
    (attrInts(n, 'dilations') ?? [1, 1]).some((d) => d !== 1) && 'dilation ≠ 1',
    !['', 'NOTSET'].includes(n.attrs.get('auto_pad')?.s ?? '') && `auto_pad ${n.attrs.get('auto_pad')?.s}`,
    strides[0] !== strides[1] && `strides [${strides.join(', ')}]`,
    pads.some((p) => p !== pad) && `pads [${pads.join(', ')}] (a ${kernel}×${kernel} IResNet conv pads ${pad})`,
  ].filter(Boolean);
  if (problems.length > 0) throw g.refuse(n, problems.join(', '));
  return { node: n, weight, bias, out, in: inC, kernel, stride: strides[0] };
}

function bn(g: Graph, n: OnnxNode, channels: number): BnInfo {
  const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => g.constant(n, i, ['scale', 'bias', 'mean', 'variance'][i - 1]));
  for (const t of [scale, bias, mean, variance]) if (t.numel !== channels) throw g.refuse(n, `'${t.name}' holds ${t.numel} values for ${channels} channels`);
  if (attrInt(n, 'training_mode', 0) !== 0) throw g.refuse(n, 'exported in training mode');
  return { node: n, scale, bias, mean, var: variance, eps: n.attrs.get('epsilon')?.f ?? 1e-5 };
}

function prelu(g: Graph, n: OnnxNode, channels: number): OnnxTensor {
  const slope = g.constant(n, 1, 'slope');
  if (slope.numel !== channels && slope.numel !== 1) throw g.refuse(n, `${slope.numel} slopes for ${channels} channels`);
  return slope;
}

/** A conv and the BN after it, if any; returns the value after both. */
function convMaybeBn(g: Graph, n: OnnxNode): [ConvInfo, BnInfo | undefined, string] {
  const c = conv(g, n);
  const u = g.usersOf(g.out(n));
  if (u.length === 1 && u[0].op === 'BatchNormalization') return [c, bn(g, u[0], c.out), g.out(u[0])];
  return [c, undefined, g.out(n)];
}

/** The scalar affine map a run of Mul/Sub/Div/Add by constants applies to the input. */
function normalisation(g: Graph, input: string): [{ scale: number; shift: number } | null, string] {
  let h = input;
  let [a, b] = [1, 0];
  for (;;) {
    const u = g.usersOf(h);
    if (u.length !== 1 || !['Mul', 'Sub', 'Div', 'Add'].includes(u[0].op)) break;
    const n = u[0];
    const ci = g.isConst(n.inputs[1]) ? 1 : 0;
    const c = g.constant(n, ci, 'operand');
    if (c.numel !== 1) throw g.refuse(n, `the input is normalised per channel ([${c.dims.join(', ')}]); maskfr models take x/127.5 − 1 on every channel`);
    const v = c.floats()[0];
    if (n.op === 'Sub' && ci === 0) throw g.refuse(n, 'subtracts the input from a constant');
    if (n.op === 'Div' && ci === 0) throw g.refuse(n, 'divides a constant by the input');
    if (n.op === 'Mul') [a, b] = [a * v, b * v];
    else if (n.op === 'Div') [a, b] = [a / v, b / v];
    else b += n.op === 'Add' ? v : -v;
    h = g.out(n);
  }
  return [h === input ? null : { scale: a, shift: b }, h];
}

function block(g: Graph, h: string, where: string): [BlockInfo, string] {
  const users = g.usersOf(h);
  const isPre = (n: OnnxNode) => n.op === 'BatchNormalization' || (n.op === 'Add' && n.inputs.some((i) => g.isConst(i)));
  const preNode = users.find(isPre);
  const side = users.find((n) => n !== preNode);
  if (users.length !== 2 || preNode === undefined || side === undefined) {
    throw new Error(`${g.f.file}: not an IResNet as maskfr reads them: ${where} should start with a BatchNormalization and a shortcut, its input feeds ${users.map((n) => `'${n.name}' (${n.op})`).join(', ')}`);
  }
  const [conv1, bn2, v1] = convMaybeBn(g, g.next(g.out(preNode), ['Conv'], `${where}'s ${preNode.op}`));
  let pre: BlockInfo['pre'];
  if (preNode.op === 'BatchNormalization') pre = { bn: bn(g, preNode, conv1.in) };
  else {
    const shift = g.constant(preNode, g.isConst(preNode.inputs[1]) ? 1 : 0, 'shift');
    if (shift.numel !== conv1.in) throw g.refuse(preNode, `a shift of ${shift.numel} values for ${conv1.in} channels`);
    pre = { shift };
  }
  const p = g.next(v1, ['PRelu'], `${where}.conv1`);
  const [conv2, bn3, v2] = convMaybeBn(g, g.next(g.out(p), ['Conv'], `${where}'s PRelu`));
  const join = g.next(v2, ['Add'], `${where}.conv2`);
  let down: BlockInfo['down'];
  if (side.op === 'Conv') {
    const [c, b, v] = convMaybeBn(g, side);
    down = { conv: c, bn: b };
    if (!join.inputs.map((i) => g.resolve(i)).includes(v)) throw g.refuse(join, `${where}'s residual add does not take its downsample`);
  } else if (side !== join) throw g.refuse(side, `${where}'s shortcut should be a Conv or the residual Add`);
  return [{ pre, conv1, bn2, prelu: prelu(g, p, conv1.out), conv2, bn3, down }, g.out(join)];
}

function recognise(f: OnnxFile): Layout {
  const g = new Graph(f);
  if (f.inputs.length !== 1) throw new Error(`${f.file}: ${f.inputs.length} inputs (${f.inputs.map((i) => i.name).join(', ')}); an IResNet has one image input`);
  if (f.outputs.length !== 1) throw new Error(`${f.file}: ${f.outputs.length} outputs (${f.outputs.map((o) => o.name).join(', ')}); one embedding output is read (an MoE export's two heads are not)`);
  const input = f.inputs[0];
  if (input.elemType !== FLOAT || input.dims.length !== 4 || input.dims[1] !== 3) {
    throw new Error(`${f.file}: input '${input.name}' is ${typeName(input.elemType)} [${input.dims.join(', ')}]; a float32 [N, 3, S, S] image is read`);
  }
  const [norm, x] = normalisation(g, input.name);
  if (norm && (Math.abs(norm.scale / NORM.scale - 1) > 1e-6 || Math.abs(norm.shift - NORM.shift) > 1e-6)) {
    throw new Error(`${f.file}: the graph normalises its input as ${norm.scale}·x + ${norm.shift}; maskfr models take x/127.5 − 1 (RGB in [0, 255])`);
  }
  const [stemConv, stemBn, s1] = convMaybeBn(g, g.next(x, ['Conv'], `input '${input.name}'${norm ? ' and its normalisation' : ''}`));
  if (stemConv.in !== 3 || stemConv.kernel !== 3 || stemConv.stride !== 1) throw g.refuse(stemConv.node, `the stem should be a 3×3 stride-1 conv of 3 channels, it is ${stemConv.kernel}×${stemConv.kernel} stride ${stemConv.stride} of ${stemConv.in}`);
  const stemPrelu = g.next(s1, ['PRelu'], 'the stem conv');
  let h = g.out(stemPrelu);
  const blocks: BlockInfo[][] = [];
  let placement: StridePlacement | undefined;
  let width = stemConv.out;
  while (g.usersOf(h).length === 2) {
    const where = `block ${blocks.reduce((a, st) => a + st.length, 1)}`;
    const [b, next] = block(g, h, where);
    const s = [b.conv1.stride, b.conv2.stride];
    if (s.includes(2)) {
      const p: StridePlacement = s[0] === 2 ? 'first' : 'second';
      if ((placement ?? p) !== p || s[0] === s[1] || !b.down || b.down.conv.stride !== 2 || b.down.conv.kernel !== 1) {
        throw g.refuse(b.conv1.node, `${where} strides its convs [${s.join(', ')}]${b.down ? ` and its downsample ${b.down.conv.stride}` : ' without a downsample'}; an IResNet stage opens with one stride-2 conv (the same one in every stage) and a 1×1 stride-2 downsample`);
      }
      placement = p;
      blocks.push([]);
    } else if (blocks.length === 0 || b.down || s.some((v) => v !== 1)) {
      throw g.refuse(b.conv1.node, `a block at stride ${s.join('/')}${b.down ? ' with a downsample' : ''} where an IResNet stage ${blocks.length === 0 ? 'opens with stride 2' : 'continues at stride 1 without one'}`);
    }
    if (b.conv1.in !== width || (b.down && (b.down.conv.in !== width || b.down.conv.out !== b.conv1.out))) throw g.refuse(b.conv1.node, `${where} takes ${b.conv1.in} channels after ${width}, or its downsample differs in width`);
    if (b.conv2.out !== b.conv1.out || b.conv2.in !== b.conv1.out || b.conv1.kernel !== 3 || b.conv2.kernel !== 3) throw g.refuse(b.conv2.node, 'the two 3×3 convs of a block differ in width');
    if (blocks[blocks.length - 1].length > 0 && b.conv1.out !== width) throw g.refuse(b.conv1.node, `width ${b.conv1.out} inside a stage of width ${width}`);
    width = b.conv1.out;
    blocks[blocks.length - 1].push(b);
    h = next;
  }
  if (blocks.length !== 4) throw new Error(`${f.file}: ${blocks.length} stages of blocks found; an IResNet has 4`);
  // The head: BN2d → flatten → fc (Gemm, or MatMul + Add) → BN1d.
  let n = g.next(h, ['BatchNormalization', 'Flatten', 'Reshape'], 'the last block');
  const bn2 = n.op === 'BatchNormalization' ? bn(g, n, width) : undefined;
  if (bn2) n = g.next(g.out(n), ['Flatten', 'Reshape'], 'the head BatchNormalization');
  if (n.op === 'Flatten' && attrInt(n, 'axis', 1) !== 1) throw g.refuse(n, 'flattens from another axis than 1');
  n = g.next(g.out(n), ['Gemm', 'MatMul'], 'the flatten');
  const weight = g.constant(n, 1, 'fc weight');
  if (weight.dims.length !== 2) throw g.refuse(n, `fc weight [${weight.dims.join(', ')}] is not a matrix`);
  let fcBias: OnnxTensor | undefined;
  const transposed = n.op === 'MatMul' || attrInt(n, 'transB', 0) === 0;
  if (n.op === 'Gemm') {
    if (attrInt(n, 'transA', 0) !== 0 || (n.attrs.get('alpha')?.f ?? 1) !== 1 || (n.attrs.get('beta')?.f ?? 1) !== 1) throw g.refuse(n, 'a Gemm with transA or a scale other than 1');
    fcBias = n.inputs[2] ? g.constant(n, 2, 'fc bias') : undefined;
  } else {
    const add = g.usersOf(g.out(n));
    if (add.length === 1 && add[0].op === 'Add' && add[0].inputs.some((i) => g.isConst(i))) {
      n = add[0];
      fcBias = g.constant(n, g.isConst(n.inputs[1]) ? 1 : 0, 'fc bias');
    }
  }
  const [inF, embedding] = transposed ? [weight.dims[0], weight.dims[1]] : [weight.dims[1], weight.dims[0]];
  if (fcBias && fcBias.numel !== embedding) throw g.refuse(n, `an fc bias of ${fcBias.numel} values for ${embedding} outputs`);
  let out = g.out(n);
  let features: BnInfo | undefined;
  const last = g.usersOf(out);
  if (last.length === 1 && last[0].op === 'BatchNormalization') {
    features = bn(g, last[0], embedding);
    out = g.out(last[0]);
  }
  if (g.usersOf(out).length > 0 || out !== g.resolve(f.outputs[0].name)) {
    const u = g.usersOf(out)[0];
    throw u ? g.refuse(u, 'a node after the embedding (its fc and BatchNormalization)') : new Error(`${f.file}: the embedding is not the graph's output '${f.outputs[0].name}'`);
  }
  const side = Math.sqrt(inF / width);
  if (!Number.isInteger(side) || inF !== width * side * side) throw g.refuse(n, `an fc of ${inF} inputs after ${width} channels: not a square feature map`);
  const inputSize = side * 16;
  for (const d of input.dims.slice(2)) if (typeof d === 'number' && d !== inputSize) throw new Error(`${f.file}: input [${input.dims.join(', ')}] but the fc sees a ${side}×${side} map (input ${inputSize})`);
  const config: IResNetConfig = {
    layers: blocks.map((s) => s.length) as unknown as IResNetConfig['layers'],
    widths: blocks.map((s) => s[0].conv1.out) as unknown as IResNetConfig['widths'],
    stride: placement!,
    embedding,
    inputSize,
    dropout: 0,
    zeroInitResidual: false,
    moe: false,
  };
  return { config, normalisesInput: norm !== null, inputName: input.name, stem: { conv: stemConv, bn: stemBn, prelu: g.constant(stemPrelu, 1, 'slope') }, blocks, head: { bn2, fc: { weight, bias: fcBias, transposed }, features } };
}

function read(t: OnnxTensor): Float32Array {
  const v = t.floats();
  const at = nonFiniteAt(v);
  if (at !== null) throw new Error(`${t.where} holds ${at}: these weights are not usable`);
  return v;
}

const fill = (n: number, v: number) => new Float32Array(n).fill(v);
const transpose = (w: Float32Array, rows: number, cols: number) => Float32Array.from({ length: w.length }, (_, i) => w[(i % rows) * cols + Math.floor(i / rows)]);

/** A BN's four tensors in our form: the graph's (ε moved into the variance, a bias of the conv
 *  before it moved into the mean), or an identity that adds `bias`. */
function bnValues(b: BnInfo | undefined, channels: number, convBias?: OnnxTensor): Record<string, Float32Array> {
  const cb = convBias ? read(convBias) : fill(channels, 0);
  if (b === undefined) return { weight: fill(channels, 1), bias: cb, running_mean: fill(channels, 0), running_var: fill(channels, 1 - EPS) };
  const [mean, variance] = [read(b.mean), read(b.var)];
  return { weight: read(b.scale), bias: read(b.bias), running_mean: mean.map((m, i) => m - cb[i]), running_var: variance.map((v) => v + b.eps - EPS) };
}

/** Values read when they are copied into the model, so no more than one big tensor is held
 *  outside it at a time. */
type Lazy = () => Float32Array;

/** Per IResNet state-dict name, its values; `direct` the FoldedIResNet tensors the graph
 *  holds as they are. */
function stateOf(l: Layout): { state: Map<string, Lazy>; direct: Map<string, Lazy>; folded: boolean } {
  const state = new Map<string, Lazy>();
  const direct = new Map<string, Lazy>();
  let folded = false;
  const putBn = (name: string, v: Record<string, Float32Array>) => Object.entries(v).forEach(([k, x]) => state.set(`${name}.${k}`, () => x));
  const convBn = (conv: string, bnName: string, c: ConvInfo, b: BnInfo | undefined, directName?: string) => {
    state.set(`${conv}.weight`, () => read(c.weight));
    putBn(bnName, bnValues(b, c.out, c.bias));
    if (b === undefined || c.bias) folded = true;
    if (b === undefined && directName) {
      direct.set(`${directName}.weight`, () => read(c.weight));
      direct.set(`${directName}.bias`, () => (c.bias ? read(c.bias) : fill(c.out, 0)));
    }
  };
  const slopes = (t: OnnxTensor, channels: number) => () => (t.numel === 1 ? fill(channels, read(t)[0]) : read(t));
  convBn('conv1', 'bn1', l.stem.conv, l.stem.bn, 'conv1');
  state.set('prelu.weight', slopes(l.stem.prelu, l.stem.conv.out));
  l.blocks.forEach((stage, i) =>
    stage.forEach((b, j) => {
      const p = `layer${i + 1}.${j}`;
      if ('bn' in b.pre) putBn(`${p}.bn1`, bnValues(b.pre.bn, b.conv1.in));
      else {
        // x + t as a BN: an identity scale around a mean of −t.
        const t = read(b.pre.shift);
        putBn(`${p}.bn1`, { ...bnValues(undefined, b.conv1.in), running_mean: t.map((v) => -v) });
        direct.set(`${p}.shift`, () => t);
        folded = true;
      }
      convBn(`${p}.conv1`, `${p}.bn2`, b.conv1, b.bn2, 'shift' in b.pre ? `${p}.conv1` : undefined);
      state.set(`${p}.prelu.weight`, slopes(b.prelu, b.conv1.out));
      convBn(`${p}.conv2`, `${p}.bn3`, b.conv2, b.bn3, `${p}.conv2`);
      if (b.down) convBn(`${p}.downsample.0`, `${p}.downsample.1`, b.down.conv, b.down.bn, `${p}.downsample.0`);
    }),
  );
  const { bn2, fc, features } = l.head;
  const [rows, cols] = fc.weight.dims;
  const embedding = l.config.embedding;
  const weight = () => (fc.transposed ? transpose(read(fc.weight), rows, cols) : read(fc.weight));
  const bias = () => (fc.bias ? read(fc.bias) : fill(embedding, 0));
  state.set('fc.weight', weight);
  state.set('fc.bias', bias);
  putBn('bn2', bnValues(bn2, l.config.widths[3]));
  putBn('features', bnValues(features, embedding));
  if (!bn2 || !features) folded = true;
  if (!bn2 && !features) {
    direct.set('fc.weight', weight);
    direct.set('fc.bias', bias);
  }
  return { state, direct, folded };
}

function assignAll(named: [string, Tensor][], values: Map<string, Lazy>, strict: boolean): void {
  for (const [k, t] of named) {
    const lazy = values.get(k);
    if (lazy === undefined) {
      if (strict) throw new Error(`onnx import: no value for '${k}'`);
      continue;
    }
    const v = lazy();
    if (v.length !== t.numel) throw new Error(`onnx import: '${k}' has ${v.length} values for [${t.shape.join(', ')}]`);
    ops.assign(t, tensor(v, t.shape), 'onnx import');
  }
}

export interface OnnxImport {
  /** The network in evaluation mode: an IResNet when the graph keeps every BN, else folded. */
  model: IResNet | FoldedIResNet;
  config: IResNetConfig;
  /** True when the graph normalises its input itself (our exports); either way the model
   *  takes the normalised image, x/127.5 − 1. */
  normalisesInput: boolean;
  /** The graph's input name (torch2onnx says 'data', others 'input.1', ours 'input'). */
  inputName: string;
  /** The table's name for this layout (`maskfr models`: r100, resnet240, …), if it has one. */
  tableName: string | null;
}

function tableName(c: IResNetConfig): string | null {
  const same = (a: IResNetConfig) => a.layers.join() === c.layers.join() && a.widths.join() === c.widths.join() && a.stride === c.stride && a.embedding === c.embedding && a.inputSize === c.inputSize && !a.moe;
  return Object.keys(MODELS).find((k) => same(MODELS[k])) ?? null;
}

/** Reads an IResNet ONNX file into our model; refuses, naming the node, what does not fit. */
export function importOnnx(file: string): OnnxImport {
  const layout = recognise(readOnnx(file));
  const state = stateOf(layout);
  const m = new IResNet(layout.config);
  // A refused value (NaN, a size) frees what was built so far.
  const load = <M extends IResNet | FoldedIResNet>(model: M, named: [string, Tensor][], values: Map<string, Lazy>, strict: boolean): M => {
    try {
      assignAll(named, values, strict);
      return model;
    } catch (e) {
      model.dispose();
      throw e;
    }
  };
  let model: IResNet | FoldedIResNet = load(m, [...m.namedParameters(), ...m.namedBuffers()], state.state, true);
  if (state.folded) {
    try {
      model = foldBatchNorm(m);
    } finally {
      m.dispose();
    }
    model = load(model, model.namedParameters(), state.direct, false);
  }
  return { model: model.eval(), config: layout.config, normalisesInput: layout.normalisesInput, inputName: layout.inputName, tableName: tableName(layout.config) };
}

/** The model of an IResNet ONNX file, in evaluation mode (see importOnnx). */
export function loadOnnxModel(file: string): IResNet | FoldedIResNet {
  return importOnnx(file).model;
}

/** The arcface_torch state dict (`layer1.0.bn1.weight`, …) of an ONNX file that keeps every
 *  BN, to initialise a model (`loadStateDict`); the caller owns the tensors and disposes them.
 *  A graph whose BNs were fused into its convs has none: their statistics are gone. */
export function onnxStateDict(file: string): { config: IResNetConfig; state: Map<string, Tensor> } {
  const { model, config } = importOnnx(file);
  if (!(model instanceof IResNet)) {
    model.dispose();
    throw new Error(`${file}: its BatchNorms are fused into the convs (as torch2onnx exports): no arcface_torch state dict to initialise from, only the folded network (loadOnnxModel)`);
  }
  return { config, state: new Map([...model.namedParameters(), ...model.namedBuffers()]) };
}
