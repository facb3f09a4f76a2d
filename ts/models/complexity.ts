// Parameters and multiply-accumulates of an IResNet, from its configuration alone (no
// tensors: resnet1.2k's ~1.7 GB of weights need not exist to be counted). Counted: every conv,
// BN (weight, bias), PReLU and the fc with its bias — the trainable tensors of the state
// dict plus features.weight; MACs of convs and the fc at the configured input size.

import type { IResNetConfig } from './iresnet';

export interface Complexity {
  params: number;
  macs: number;
}

/** One residual block's shape: channels in and out, the sides it reads, convolves at and
 *  writes (the stride-2 conv sits first or second), and whether it has the 1×1 shortcut. */
export interface BlockShape {
  cin: number;
  planes: number;
  inSide: number;
  midSide: number;
  outSide: number;
  shortcut: boolean;
}

/** Every block of the network in order, from the configuration. */
export function blockShapes(c: IResNetConfig): BlockShape[] {
  const out: BlockShape[] = [];
  let side = c.inputSize;
  let inplanes = c.widths[0];
  c.layers.forEach((blocks, i) => {
    const planes = c.widths[i];
    for (let b = 0; b < blocks; b++) {
      const outSide = b === 0 ? side / 2 : side;
      out.push({ cin: b === 0 ? inplanes : planes, planes, inSide: side, midSide: c.stride === 'first' ? outSide : side, outSide, shortcut: b === 0 });
      side = outSide;
    }
    inplanes = planes;
  });
  return out;
}

export function complexity(c: IResNetConfig): Complexity {
  let params = 0;
  let macs = 0;
  const conv = (cin: number, cout: number, k: number, outSide: number) => {
    params += cin * cout * k * k;
    macs += cin * cout * k * k * outSide * outSide;
  };
  const bn = (ch: number) => (params += 2 * ch);
  conv(3, c.widths[0], 3, c.inputSize);
  bn(c.widths[0]);
  params += c.widths[0]; // PReLU
  const shapes = blockShapes(c);
  for (const { cin, planes, midSide, outSide, shortcut } of shapes) {
    bn(cin);
    conv(cin, planes, 3, midSide);
    bn(planes);
    params += planes; // PReLU
    conv(planes, planes, 3, outSide);
    bn(planes);
    if (shortcut) {
      conv(cin, planes, 1, outSide);
      bn(planes);
    }
  }
  const side = shapes.at(-1)?.outSide ?? c.inputSize;
  const fcIn = c.widths[3] * side * side;
  // The MoE's second head adds its parameters; each image still runs through one head.
  for (let head = 0; head < (c.moe ? 2 : 1); head++) {
    bn(c.widths[3]);
    params += fcIn * c.embedding + c.embedding;
    bn(c.embedding);
  }
  macs += fcIn * c.embedding;
  return { params, macs };
}
