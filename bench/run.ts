// `npm run bench -- [suite ...] [--json FILE]`: runs the suites, prints a table with the
// machine's FMA peak, and writes {"machine", "results"} JSON. Not a test: numbers, not verdicts.

import fs from 'node:fs';
import path from 'node:path';
import { native } from '../ts/native';
import { systemInfo } from '../ts';
import { TorchReference } from './reference';
import { convSuite } from './suites/conv';
import { modelsSuite } from './suites/models';
import { dataSuite } from './suites/data';
import { masksSuite } from './suites/masks';
import { trainSuite } from './suites/train';
import { evalSuite } from './suites/eval';
import { torchLoadSuite } from './suites/torch-load';
import { packSuite } from './suites/pack';
import type { Result, Suite } from './suites/types';

const SUITES: Record<string, Suite> = { conv: convSuite, models: modelsSuite, data: dataSuite, masks: masksSuite, train: trainSuite, eval: evalSuite, 'torch-load': torchLoadSuite, pack: packSuite };

function parseArgs(argv: string[]): { suites: string[]; json: string | null } {
  const suites: string[] = [];
  let json: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--json') json = argv[++i] ?? null;
    else if (argv[i] in SUITES) suites.push(argv[i]);
    else throw new Error(`bench: unknown suite or option '${argv[i]}' (suites: ${Object.keys(SUITES).join(', ')}; option: --json FILE)`);
  }
  return { suites: suites.length > 0 ? suites : Object.keys(SUITES), json };
}

function table(results: Result[], peak: number): string {
  const f = (v: number | null, d = 1) => (v === null ? '—' : v.toFixed(d));
  const rows = results.map((r) => [r.suite, r.name, r.unit, f(r.ours), f(r.reference), f(r.ratio, 2), r.unit === 'GFLOP/s' ? `${((100 * r.ours) / peak).toFixed(0)}%` : '']);
  const head = ['suite', 'name', 'unit', 'ours', 'torch', 'ratio', 'of peak'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const { suites, json } = parseArgs(process.argv.slice(2));
  const info = systemInfo();
  const peak = native.measureFmaPeak();
  const torch = await TorchReference.start(info.computeThreads);
  const machine = { ...info, fmaPeakGflops: peak.gflops, fmaIsa: peak.isa, torch: typeof torch === 'string' ? null : torch.version };
  console.log(`${info.cpu}, ${info.computeThreads} compute threads; measured f32 FMA peak ${peak.gflops.toFixed(1)} GFLOP/s (${peak.isa})`);
  console.log(typeof torch === 'string' ? `reference: none (${torch})` : `reference: PyTorch ${torch.version}, ${info.computeThreads} threads, interleaved`);
  const results: Result[] = [];
  try {
    for (const s of suites) results.push(...(await SUITES[s](typeof torch === 'string' ? null : torch)));
  } finally {
    if (typeof torch !== 'string') torch.close();
  }
  console.log(`\n${table(results, peak.gflops)}`);
  if (json) {
    fs.mkdirSync(path.dirname(path.resolve(json)), { recursive: true });
    fs.writeFileSync(json, `${JSON.stringify({ machine, results }, null, 2)}\n`);
    console.log(`\nwrote ${json}`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
