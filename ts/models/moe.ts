// The report's first-round mixture of experts: one shared IResNet trunk and two embedding
// heads, the masked one and the unmasked one, each sample routed by its mask flag. (The
// report found the plain single head better; this reproduces the comparison.) The unmasked
// head keeps the plain model's names (bn2, fc, features), so a plain checkpoint loads into
// it; the masked head's are prefixed `masked.`.

import { Tensor } from '../tensor/tensor';
import * as ops from '../tensor/ops';
import { EmbeddingHead, IResNet, IResNetConfig, modelConfig } from './iresnet';

export class IResNetMoE extends IResNet {
  readonly masked: EmbeddingHead;

  constructor(config: IResNetConfig) {
    super(config);
    this.masked = this.child('masked', new EmbeddingHead(config));
  }

  /** Embeddings with each row from the head its flag picks (`masked[i]` true: masked head). */
  forwardRouted(x: Tensor, masked: ArrayLike<boolean | number>): Tensor {
    const n = x.shape[0];
    if (masked.length !== n) throw new Error(`IResNetMoE: ${masked.length} mask flags for a batch of ${n}`);
    const h = this.trunk(x);
    const rows = (flag: boolean) => Int32Array.from({ length: n }, (_, i) => i).filter((i) => Boolean(masked[i]) === flag);
    const parts = [
      [this.head, rows(false)],
      [this.masked, rows(true)],
    ] as const;
    const outs = parts.filter(([, idx]) => idx.length > 0).map(([head, idx]) => ops.scatterRows(head.forward(ops.indexRows(h, idx)), idx, n));
    return outs.length === 1 ? outs[0] : ops.add(outs[0], outs[1]);
  }
}

export function createMoE(name: string, overrides: Partial<IResNetConfig> = {}): IResNetMoE {
  return new IResNetMoE(modelConfig(name, overrides));
}
