// CPU eval forward images/s of r18 and r50 at batch 8: ours unfolded and BN-folded vs
// PyTorch eager (same architecture, random weights, same threads), measured interleaved.

import { createModel, foldBatchNorm, noGrad, randn, tidy, IResNet, FoldedIResNet } from '../../ts';
import type { TorchReference } from '../reference';
import { median, Result } from './types';
import { ROUNDS, settle, time, TIMING } from './timing';

const BATCH = 8;

export async function modelsSuite(torch: TorchReference | null): Promise<Result[]> {
  const results: Result[] = [];
  for (const name of ['r18', 'r50']) {
    const model = createModel(name).eval();
    const folded = foldBatchNorm(model);
    const x = randn([BATCH, 3, 112, 112]);
    const run = (m: IResNet | FoldedIResNet) => () => tidy(() => noGrad(() => void m.forward(x)));
    const [plain, fold, ref]: number[][] = [[], [], []];
    for (let r = 0; r < ROUNDS; r++) {
      await settle();
      plain.push(...time(run(model)));
      await settle();
      fold.push(...time(run(folded)));
      await settle();
      if (torch) {
        const c = model.config;
        const req = { op: 'iresnet', layers: c.layers, widths: c.widths, embedding: c.embedding, placement: c.stride, batch: BATCH, ...TIMING };
        ref.push(...(await torch.ask<{ seconds: number[] }>(req)).seconds);
      }
    }
    const refRate = torch ? BATCH / median(ref) : null;
    for (const [label, ts] of [['', plain], [' (BN folded)', fold]] as const) {
      const ours = BATCH / median(ts);
      results.push({ suite: 'models', name: `${name} b${BATCH} forward${label}`, unit: 'images/s', ours, reference: refRate, ratio: refRate ? ours / refRate : null });
    }
    x.dispose();
    folded.dispose();
    model.dispose();
  }
  return results;
}
