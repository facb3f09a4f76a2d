import test from 'ava';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { complexity, modelConfig } from '../ts';
import { bestLayout, predict } from '../ts/cli/fit-fruits';

test('bestLayout: the most parameters (then MACs) of every layout predicted within the budget', (t) => {
  const c = modelConfig('tiny');
  const m = { base: 1, perBlock: [0.5, 0.3, 0.2, 0.4] as [number, number, number, number] };
  for (const [budget, maxParams] of [[1, Infinity], [2.2, Infinity], [3.7, Infinity], [3.7, 150_000]]) {
    // Brute force over every layout within the budget.
    let best: { l: number[]; p: number; q: number } | null = null;
    for (let a = 1; a < 12; a++)
      for (let b = 1; b < 12; b++)
        for (let k = 1; k < 16; k++)
          for (let d = 1; d < 12; d++) {
            const l = [a, b, k, d] as [number, number, number, number];
            const x = complexity({ ...c, layers: l });
            if (predict(m, l) > budget + 1e-9 || x.params > maxParams) continue;
            if (best === null || x.params > best.p || (x.params === best.p && x.macs > best.q)) best = { l, p: x.params, q: x.macs };
          }
    const got = bestLayout(m, budget, c, maxParams)!;
    t.deepEqual([complexity({ ...c, layers: got }).params, complexity({ ...c, layers: got }).macs], [best!.p, best!.q], `budget ${budget}, at most ${maxParams} parameters`);
    t.true(predict(m, got) <= budget + 1e-9);
  }
  t.is(bestLayout(m, 0.5, c), null);
  t.is(bestLayout(m, 5, c, 1000), null);
});

test('maskfr fit-fruits measures the stages, picks a layout and measures it whole', (t) => {
  const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
  const run = (...a: string[]) => spawnSync(process.execPath, [cli, 'fit-fruits', '--model', 'tiny', '--grow', '2', ...a], { encoding: 'utf8' });
  const r = run('--budget', '3ms', '--scale', '0.5');
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /tiny, widths \[4, 8, 8, 16\]: measuring/);
  t.regex(r.stdout, /per extra block by stage: [\d.]+, [\d.]+, [\d.]+, [\d.]+ ms/);
  t.regex(r.stdout, /best within 3\.00 ms predicted: layers \[\d+, \d+, \d+, \d+\], [\d.]+ M params \(\d+ MB\)/);
  t.regex(r.stdout, /predicted [\d.]+ ms, measured [\d.]+ ms \((within|over) the 3 ms budget\)/);
  // Over the budget, the costs are measured again around the pick before the next try.
  if (/over the 3 ms budget\)\n(?!$)/.test(r.stdout)) t.regex(r.stdout, /over the 3 ms budget\)\n  around it, per extra block by stage: [\d.]+, [\d.]+, [\d.]+, [\d.]+ ms\n(retry within|  no layout fits [\d.]+ ms by the costs measured again)/);
  const none = run('--budget', '0.01ms');
  t.is(none.status, 1);
  t.regex(none.stdout, /no layout fits 0\.01 ms and 1000 MB/);
  t.regex(run('--budget', 'soon').stderr, /--budget must be a positive number of ms/);
});
