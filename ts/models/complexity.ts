// Parameters and multiply-accumulates of an IResNet, from its configuration alone (no
// tensors: R1.2K's ~1.7 GB of weights need not exist to be counted). Counted: every conv,
// BN (weight, bias), PReLU and the fc with its bias — the trainable tensors of the state
// dict plus features.weight; MACs of convs and the fc at the configured input size.

import type { IResNetConfig } from './iresnet';

export interface Complexity {
  params: number;
  macs: number;
}

export function complexity(c: IResNetConfig): Complexity {
  let params = 0;
  let macs = 0;
  const conv = (cin: number, cout: number, k: number, outSide: number) => {
    params += cin * cout * k * k;
    macs += cin * cout * k * k * outSide * outSide;
  };
  const bn = (ch: number) => (params += 2 * ch);
  let side = c.inputSize;
  conv(3, c.widths[0], 3, side);
  bn(c.widths[0]);
  params += c.widths[0]; // PReLU
  let inplanes = c.widths[0];
  c.layers.forEach((blocks, i) => {
    const planes = c.widths[i];
    for (let b = 0; b < blocks; b++) {
      const cin = b === 0 ? inplanes : planes;
      const inSide = side;
      const outSide = b === 0 ? side / 2 : side;
      bn(cin);
      conv(cin, planes, 3, c.stride === 'first' ? outSide : inSide);
      bn(planes);
      params += planes; // PReLU
      conv(planes, planes, 3, outSide);
      bn(planes);
      if (b === 0) {
        conv(cin, planes, 1, outSide);
        bn(planes);
      }
      side = outSide;
    }
    inplanes = planes;
  });
  bn(c.widths[3]);
  const fcIn = c.widths[3] * side * side;
  params += fcIn * c.embedding + c.embedding;
  macs += fcIn * c.embedding;
  bn(c.embedding);
  return { params, macs };
}
