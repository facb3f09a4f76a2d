// Masked faces synthesized per second on one core, per synthesizer, at 112×112 (each call
// copies the image in and out, as the loader's workers do not need to). No PyTorch
// counterpart: the reference column stays empty.

import { syntheticFace } from '../../ts';
import { native } from '../../ts/native';
import type { TorchReference } from '../reference';
import { median, Result } from './types';
import { ROUNDS, settle } from './timing';

export async function masksSuite(_torch: TorchReference | null): Promise<Result[]> {
  const faces = Array.from({ length: 16 }, (_, i) => Buffer.from(syntheticFace(1, i, 0)));
  const results: Result[] = [];
  for (const [name, synth] of [['template', native.templateMask], ['renderer', native.renderMask]] as const) {
    const rates: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      await settle();
      let n = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < 500) synth(faces[n % faces.length], 112, 112, n++, null);
      rates.push(n / ((performance.now() - t0) / 1000));
    }
    results.push({ suite: 'masks', name: `${name} synthesizer, 112², 1 core`, unit: 'images/s', ours: median(rates), reference: null, ratio: null });
  }
  console.log("masks: no PyTorch reference (the seed used insightface's tools; its renderer takes ~10 ms per image on one core)");
  return results;
}
