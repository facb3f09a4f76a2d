// `maskfr fit-fruits`: the largest IResNet layout [a, b, c, d] whose folded export fits a
// FRUITS budget on this CPU. Latency is close to linear in the blocks of each stage, so it is
// measured once under FRUITS' rules (onnxruntime, one thread, 6th fastest of 50): a one-block
// network, then each stage grown by a few blocks; the layouts are searched on that model for
// the most parameters (then MACs) within the MFR challenge kit's 1 GB ONNX limit (without it
// the most parameters per ms is always more last-stage blocks, to many GB), and the pick is
// exported and measured whole (when over, the costs are measured again around it).

import { createModel, IResNetConfig, modelConfig } from '../models/iresnet';
import { complexity } from '../models/complexity';
import { foldBatchNorm } from '../models/fold';
import { exportIResNet } from '../export/iresnet-onnx';
import { Command, integerOption, Parsed, required } from './args';
import { fruitsLatency } from './models';

type Layout = [number, number, number, number];

/** FRUITS latency (ms) of the folded export of `name` with this layout and widths. */
async function measure(name: string, layers: Layout, widths: IResNetConfig['widths']): Promise<number> {
  const m = createModel(name, { layers, widths });
  const f = foldBatchNorm(m);
  m.dispose();
  try {
    return await fruitsLatency(exportIResNet(f).bytes);
  } finally {
    f.dispose();
  }
}

export interface LatencyModel {
  /** ms of everything but the blocks past each stage's first, and ms per such block. */
  base: number;
  perBlock: [number, number, number, number];
}

/** Measures the latency model: [1,1,1,1], then each stage `grow` blocks longer. */
export async function measureLatencyModel(name: string, widths: IResNetConfig['widths'], grow = 4): Promise<LatencyModel> {
  const base = await measure(name, [1, 1, 1, 1], widths);
  const perBlock = [0, 0, 0, 0] as LatencyModel['perBlock'];
  for (let s = 0; s < 4; s++) {
    const l: Layout = [1, 1, 1, 1];
    l[s] += grow;
    // Noise can make a cheap stage look free or negative: a block never costs nothing.
    perBlock[s] = Math.max(1e-3, ((await measure(name, l, widths)) - base) / grow);
  }
  return { base, perBlock };
}

/** The latency model around `at` (measured `ms`): each stage grown by enough blocks to add
 *  about 5% of `budget` by the first model `m`'s costs, and `ms` where `at` is. */
export async function localLatencyModel(name: string, widths: IResNetConfig['widths'], at: Layout, ms: number, m: LatencyModel, budget: number): Promise<LatencyModel> {
  const perBlock = [0, 0, 0, 0] as LatencyModel['perBlock'];
  for (let s = 0; s < 4; s++) {
    const grow = Math.max(1, Math.ceil((0.05 * budget) / m.perBlock[s]));
    const l = [...at] as Layout;
    l[s] += grow;
    perBlock[s] = Math.max(1e-3, ((await measure(name, l, widths)) - ms) / grow);
  }
  return { base: ms - at.reduce((sum, n, i) => sum + (n - 1) * perBlock[i], 0), perBlock };
}

export const predict = (m: LatencyModel, l: Layout) => m.base + l.reduce((s, n, i) => s + (n - 1) * m.perBlock[i], 0);

/** The layout with the most parameters, then MACs, predicted within `budget` ms and with at
 *  most `maxParams`; null when even [1,1,1,1] is over either. Parameters and MACs are linear
 *  in the blocks past each stage's first, so each stage's share is counted once. */
export function bestLayout(m: LatencyModel, budget: number, c: IResNetConfig, maxParams = Infinity): Layout | null {
  const at = (l: Layout) => complexity({ ...c, layers: l });
  const one = at([1, 1, 1, 1]);
  const grown = [0, 1, 2, 3].map((s) => at([1, 1, 1, 1].map((n, i) => n + (i === s ? 1 : 0)) as Layout));
  const [dp, dm] = [grown.map((g) => g.params - one.params), grown.map((g) => g.macs - one.macs)];
  const left = budget - m.base;
  const room = maxParams - one.params;
  if (left < 0 || room < 0) return null;
  const t = m.perBlock;
  let best = { l: [1, 1, 1, 1] as Layout, p: -1, q: -1 };
  for (let a = 0; a * t[0] <= left && a * dp[0] <= room; a++) {
    for (let b = 0; a * t[0] + b * t[1] <= left && a * dp[0] + b * dp[1] <= room; b++) {
      for (let k = 0; a * t[0] + b * t[1] + k * t[2] <= left && a * dp[0] + b * dp[1] + k * dp[2] <= room; k++) {
        // The last stage takes what is left of both (every block adds parameters).
        const d = Math.min(Math.floor((left - a * t[0] - b * t[1] - k * t[2]) / t[3]), Math.floor((room - a * dp[0] - b * dp[1] - k * dp[2]) / dp[3]));
        const pp = a * dp[0] + b * dp[1] + k * dp[2] + d * dp[3];
        const qq = a * dm[0] + b * dm[1] + k * dm[2] + d * dm[3];
        if (pp > best.p || (pp === best.p && qq > best.q)) best = { l: [a + 1, b + 1, k + 1, d + 1], p: pp, q: qq };
      }
    }
  }
  return best.l;
}

export const fitFruits: Command = {
  summary: 'the largest IResNet layout [a, b, c, d] whose folded export fits a FRUITS latency budget on this CPU',
  usage: 'maskfr fit-fruits --budget MS [--model NAME] [--scale F]',
  options: [
    { name: 'budget', value: 'MS', default: '1000', help: 'the latency budget per face, ms (FRUITS-1000, -500, -100)' },
    { name: 'model', value: 'NAME', default: 'resnet240', help: 'the family: its widths, stride placement and embedding' },
    { name: 'scale', value: 'F', default: '1', help: 'widths × F (rounded, at least 1)' },
    { name: 'max-mb', value: 'MB', default: '1000', help: "the largest float32 model, MB (the MFR challenge kit's ONNX limit: 1 GB)" },
    { name: 'grow', value: 'N', default: '4', help: 'blocks added to a stage to measure its per-block latency' },
  ],
  example: 'maskfr fit-fruits --budget 1000ms --model resnet240',
  run: fit,
};

async function fit(p: Parsed): Promise<number> {
  const budgetText = required(p, 'budget').replace(/ms$/, '');
  const budget = Number(budgetText);
  if (!(budget > 0)) throw new Error(`fit-fruits: --budget must be a positive number of ms (e.g. 1000ms), got ${required(p, 'budget')}`);
  const scale = Number(required(p, 'scale'));
  if (!(scale > 0)) throw new Error(`fit-fruits: --scale must be a positive number, got ${required(p, 'scale')}`);
  const maxMb = Number(required(p, 'max-mb'));
  if (!(maxMb > 0)) throw new Error(`fit-fruits: --max-mb must be a positive number, got ${required(p, 'max-mb')}`);
  const maxParams = Math.floor((maxMb * 1e6) / 4);
  const name = required(p, 'model');
  const c0 = modelConfig(name);
  const widths = c0.widths.map((w) => Math.max(1, Math.round(w * scale))) as unknown as IResNetConfig['widths'];
  const c = { ...c0, widths };
  console.log(`${name}, widths [${widths.join(', ')}]: measuring per-stage block latency (onnxruntime, 1 thread, 6th fastest of 50)`);
  const m = await measureLatencyModel(name, widths, integerOption(p, 'grow', 1));
  console.log(`  [1, 1, 1, 1]: ${m.base.toFixed(2)} ms; per extra block by stage: ${m.perBlock.map((t) => t.toFixed(3)).join(', ')} ms`);
  let l = bestLayout(m, budget, c, maxParams);
  if (l === null) {
    console.log(`no layout fits ${budget} ms and ${maxMb} MB: the one-block network alone takes ${m.base.toFixed(2)} ms, ${((4 * complexity({ ...c, layers: [1, 1, 1, 1] }).params) / 1e6).toFixed(1)} MB (try a smaller --scale)`);
    return 1;
  }
  // A large network runs its blocks slower than the small ones they were measured in (its
  // weights stream from memory): when the pick is over, the per-block costs are measured
  // again around it and the search repeated on that model; then the budget aimed at shrinks
  // by the error left, three tries in all.
  let [target, model] = [budget, m];
  for (let round = 0; ; round++) {
    const cx = complexity({ ...c, layers: l });
    const [predicted, measured] = [predict(model, l), await measure(name, l, widths)];
    console.log(`${round === 0 ? 'best' : 'retry'} within ${target.toFixed(2)} ms predicted: layers [${l.join(', ')}], ${(cx.params / 1e6).toFixed(2)} M params (${((4 * cx.params) / 1e6).toFixed(0)} MB), ${(cx.macs / 1e9).toFixed(3)} GMACs`);
    console.log(`  predicted ${predicted.toFixed(2)} ms, measured ${measured.toFixed(2)} ms (${measured <= budget ? 'within' : 'over'} the ${budget} ms budget)`);
    if (measured <= budget || round === 2) break;
    if (round === 0) {
      model = await localLatencyModel(name, widths, l, measured, m, budget);
      console.log(`  around it, per extra block by stage: ${model.perBlock.map((t) => t.toFixed(3)).join(', ')} ms`);
    } else target *= predicted / measured;
    const next = bestLayout(model, target, c, maxParams);
    if (next === null) {
      console.log(`  no layout fits ${target.toFixed(2)} ms by the costs measured again: the pick above is the closest (over the budget)`);
      break;
    }
    l = next;
  }
  return 0;
}
