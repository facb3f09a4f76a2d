// IResNet ("IR" blocks, as ArcFace / arcface_torch): the backbone family of the report.
// Module and parameter names follow arcface_torch's iresnet.py, so state dicts map one to one.

import { Tensor, zeros } from '../tensor/tensor';
import { randn } from '../tensor/random';
import * as ops from '../tensor/ops';
import { Module } from '../nn/module';
import { BatchNorm, Conv2d, Dropout, Linear, PReLU, Sequential } from '../nn/layers';
import { checkpoint } from '../autograd/recompute';

/** Which 3×3 conv of a stage's first block carries the stride 2: arcface_torch strides the
 *  block's second conv, the report's Fig. 2 the first (the second then runs at the lower
 *  resolution: fewer MACs). */
export type StridePlacement = 'first' | 'second';

export interface IResNetConfig {
  /** Blocks per stage. */
  layers: readonly [number, number, number, number];
  widths: readonly [number, number, number, number];
  stride: StridePlacement;
  /** Embedding size. */
  embedding: number;
  /** Input side (square); the head's fc sees widths[3]·(side/16)² features. */
  inputSize: number;
  dropout: number;
  /** Zero the last BN of every residual branch at init (arcface_torch's zero_init_residual). */
  zeroInitResidual: boolean;
  /** The report's first-round mixture of experts: a second embedding head for masked faces,
   *  each sample routed to one head by its mask flag (`NAME-moe` in the table). */
  moe: boolean;
}

const WIDTHS = [64, 128, 256, 512] as const;
const base = { widths: WIDTHS, embedding: 512, inputSize: 112, dropout: 0, zeroInitResidual: false, moe: false };

/** Every named depth in one table: arcface_torch's r18–r200 (stride on the second conv, to
 *  load their checkpoints) and the report's Table 1 as the report names them, resnet120–
 *  resnet1.2k (stride on the first conv; `resnet200` and `r200` differ only there). */
const PLAIN: Record<string, IResNetConfig> = {
  r18: { ...base, layers: [2, 2, 2, 2], stride: 'second' },
  r34: { ...base, layers: [3, 4, 6, 3], stride: 'second' },
  r50: { ...base, layers: [3, 4, 14, 3], stride: 'second' },
  r100: { ...base, layers: [3, 13, 30, 3], stride: 'second' },
  r200: { ...base, layers: [6, 26, 60, 6], stride: 'second' },
  resnet120: { ...base, layers: [3, 13, 40, 3], stride: 'first' },
  resnet140: { ...base, layers: [3, 15, 48, 3], stride: 'first' },
  resnet200: { ...base, layers: [6, 26, 60, 6], stride: 'first' },
  resnet240: { ...base, layers: [3, 25, 88, 3], stride: 'first' },
  resnet600: { ...base, layers: [3, 70, 220, 3], stride: 'first' },
  'resnet1.2k': { ...base, layers: [3, 80, 512, 3], stride: 'first' },
  // Small configurations for tests and demos (still 112×112 in, four stride-2 stages).
  tiny: { ...base, layers: [1, 1, 1, 1], widths: [8, 16, 16, 32], embedding: 64, stride: 'second' },
  'tiny-first': { ...base, layers: [1, 1, 1, 1], widths: [8, 16, 16, 32], embedding: 64, stride: 'first' },
  small: { ...base, layers: [1, 2, 2, 1], widths: [16, 32, 64, 128], embedding: 128, stride: 'first' },
};

/** The table: every plain model, and each also as `NAME-moe`. */
export const MODELS: Record<string, IResNetConfig> = {
  ...PLAIN,
  ...Object.fromEntries(Object.entries(PLAIN).map(([name, c]) => [`${name}-moe`, { ...c, moe: true }])),
};

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length];
}

/** The known names closest to `name` (case-insensitive), none when all are far. `resnet` is
 *  also read as `r`, so `r240` finds resnet240 and the old `R200` both r200 and resnet200. */
export function closestModels(name: string): string[] {
  const short = (s: string) => s.toLowerCase().replace(/^resnet/, 'r');
  const dist = (known: string) => Math.min(editDistance(name.toLowerCase(), known.toLowerCase()), editDistance(short(name), short(known)));
  const best = Math.min(...Object.keys(MODELS).map(dist));
  return best <= 2 ? Object.keys(MODELS).filter((k) => dist(k) === best) : [];
}

/** What to say of an unknown model name: the closest known ones and the list. */
export function knownModels(name: string): string {
  const near = closestModels(name);
  const hint = near.length > 0 ? `did you mean ${near.join(' or ')}? ` : '';
  return `${hint}known models are ${Object.keys(PLAIN).join(', ')}, each also as NAME-moe`;
}

/** The named configuration with overrides; an unknown name gets the closest known ones and
 *  the list. */
export function modelConfig(name: string, overrides: Partial<IResNetConfig> = {}): IResNetConfig {
  if (!Object.hasOwn(MODELS, name)) throw new Error(`unknown model '${name}': ${knownModels(name)}`);
  return { ...MODELS[name], ...overrides };
}

/** arcface_torch's init: conv weights N(0, 0.1). */
function convInit(conv: Conv2d): Conv2d {
  ops.assign(conv.weight, randn(conv.weight.shape, { std: 0.1 }), 'init');
  return conv;
}

export class IBasicBlock extends Module {
  readonly bn1: BatchNorm;
  readonly conv1: Conv2d;
  readonly bn2: BatchNorm;
  readonly prelu: PReLU;
  readonly conv2: Conv2d;
  readonly bn3: BatchNorm;
  readonly downsample: Sequential | null;

  constructor(inplanes: number, planes: number, stride: number, placement: StridePlacement) {
    super();
    const [s1, s2] = placement === 'first' ? [stride, 1] : [1, stride];
    this.bn1 = this.child('bn1', new BatchNorm(inplanes));
    this.conv1 = this.child('conv1', convInit(new Conv2d(inplanes, planes, 3, { stride: s1, padding: 1 })));
    this.bn2 = this.child('bn2', new BatchNorm(planes));
    this.prelu = this.child('prelu', new PReLU(planes));
    this.conv2 = this.child('conv2', convInit(new Conv2d(planes, planes, 3, { stride: s2, padding: 1 })));
    this.bn3 = this.child('bn3', new BatchNorm(planes));
    this.downsample =
      stride !== 1 || inplanes !== planes
        ? this.child('downsample', new Sequential(convInit(new Conv2d(inplanes, planes, 1, { stride })), new BatchNorm(planes)))
        : null;
  }

  forward(x: Tensor): Tensor {
    let out = this.bn1.forward(x);
    out = this.conv1.forward(out);
    out = this.bn2.forward(out);
    out = this.prelu.forward(out);
    out = this.conv2.forward(out);
    out = this.bn3.forward(out);
    return ops.add(out, this.downsample ? this.downsample.forward(x) : x);
  }
}

/** The embedding head: BN2d → flatten → dropout → fc → BN1d (weight fixed at 1). */
export class EmbeddingHead extends Module {
  readonly bn2: BatchNorm;
  readonly dropout: Dropout;
  readonly fc: Linear;
  readonly features: BatchNorm;
  constructor(c: IResNetConfig) {
    super();
    const side = c.inputSize / 16;
    this.bn2 = this.child('bn2', new BatchNorm(c.widths[3]));
    this.dropout = this.child('dropout', new Dropout(c.dropout));
    this.fc = this.child('fc', new Linear(c.widths[3] * side * side, c.embedding));
    this.features = this.child('features', new BatchNorm(c.embedding));
    this.features.weight.requiresGrad = false;
  }
  forward(x: Tensor): Tensor {
    return this.features.forward(this.fc.forward(this.dropout.forward(ops.flatten(this.bn2.forward(x)))));
  }
}

export class IResNet extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm;
  readonly prelu: PReLU;
  readonly stages: Sequential[];
  readonly head: EmbeddingHead;
  /** Per stage, whether its blocks keep their activations for the backward (false) or
   *  recompute them there (true: activation checkpointing, memory for compute). */
  checkpointing: boolean[] = [false, false, false, false];

  constructor(readonly config: IResNetConfig) {
    super();
    const c = config;
    if (c.inputSize % 16 !== 0) throw new Error(`IResNet: input size must be a multiple of 16, got ${c.inputSize}`);
    this.conv1 = this.child('conv1', convInit(new Conv2d(3, c.widths[0], 3, { padding: 1 })));
    this.bn1 = this.child('bn1', new BatchNorm(c.widths[0]));
    this.prelu = this.child('prelu', new PReLU(c.widths[0]));
    let inplanes = c.widths[0];
    this.stages = c.layers.map((blocks, i) => {
      const planes = c.widths[i];
      const stage = new Sequential(...Array.from({ length: blocks }, (_, b) => new IBasicBlock(b === 0 ? inplanes : planes, planes, b === 0 ? 2 : 1, c.stride)));
      inplanes = planes;
      return this.child(`layer${i + 1}`, stage);
    });
    // The head's modules sit at the top level in arcface_torch's names (bn2, fc, features).
    this.head = new EmbeddingHead(c);
    for (const name of ['bn2', 'dropout', 'fc', 'features'] as const) this.child(name, this.head[name]);
    if (c.zeroInitResidual) {
      for (const stage of this.stages) for (const b of stage.layers as IBasicBlock[]) ops.assign(b.bn3.weight, zeros(b.bn3.weight.shape), 'init');
    }
  }

  /** The trunk: stem and the four stages, `[N,3,S,S]` → `[N,512,S/16,S/16]`. */
  trunk(x: Tensor): Tensor {
    const s = this.config.inputSize;
    if (x.shape.length !== 4 || x.shape[1] !== 3 || x.shape[2] !== s || x.shape[3] !== s) {
      throw new Error(`IResNet: expected input [N, 3, ${s}, ${s}], got [${x.shape.join(', ')}]`);
    }
    const h = this.prelu.forward(this.bn1.forward(this.conv1.forward(x)));
    return this.stages.reduce((a, stage, i) => {
      if (!this.checkpointing[i]) return stage.forward(a);
      return (stage.layers as IBasicBlock[]).reduce((y, b) => checkpoint((v) => b.forward(v), y, b.parameters()), a);
    }, h);
  }

  /** Embeddings `[N, embedding]`. `masked` (each sample's mask flag) only matters to the
   *  MoE; the plain model's one head embeds masked and unmasked faces alike. */
  forward(x: Tensor, _masked?: ArrayLike<boolean | number>): Tensor {
    return this.head.forward(this.trunk(x));
  }
}

/** The report's first-round mixture of experts: the shared trunk and two embedding heads,
 *  each sample routed by its mask flag (the report found the plain single head better; this
 *  reproduces the comparison). The unmasked head keeps the plain model's names (bn2, fc,
 *  features), so a plain checkpoint's head loads into it; the masked head's are `masked.…`. */
export class IResNetMoE extends IResNet {
  readonly masked: EmbeddingHead;
  /** The flag of every sample when a forward is given none: false (unmasked) suits the
   *  verification sets seen while training; `maskfr eval/embed --masked true` sets it. */
  maskedByDefault = false;

  constructor(config: IResNetConfig) {
    super(config);
    this.masked = this.child('masked', new EmbeddingHead(config));
  }

  /** Each row from the head its flag picks (`masked[i]` true: the masked head). */
  override forward(x: Tensor, masked: ArrayLike<boolean | number> = new Array<boolean>(x.shape[0]).fill(this.maskedByDefault)): Tensor {
    const n = x.shape[0];
    if (masked.length !== n) throw new Error(`IResNetMoE: ${masked.length} mask flags for a batch of ${n}`);
    const h = this.trunk(x);
    const rows = (flag: boolean) => Int32Array.from({ length: n }, (_, i) => i).filter((i) => Boolean(masked[i]) === flag);
    const parts = [
      [this.head, rows(false)],
      [this.masked, rows(true)],
    ] as const;
    const outs = parts
      .filter(([, idx]) => idx.length > 0)
      // A batch all of one kind (eval under one flag) skips the gather and scatter.
      .map(([head, idx]) => (idx.length === n ? head.forward(h) : ops.scatterRows(head.forward(ops.indexRows(h, idx)), idx, n)));
    return outs.length === 1 ? outs[0] : ops.add(outs[0], outs[1]);
  }
}

/** A model from the table by name, e.g. `createModel('r50')`, `createModel('resnet240-moe')`. */
export function createModel(name: string, overrides: Partial<IResNetConfig> = {}): IResNet {
  const c = modelConfig(name, overrides);
  return c.moe ? new IResNetMoE(c) : new IResNet(c);
}
