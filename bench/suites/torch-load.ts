// Loading an r100-sized PyTorch state dict (.pt, f32, ~261 MB): our reader
// (readTorchCheckpoint, which checks the file before allocating and runs no pickle code) vs
// torch.load(weights_only=True), each in a fresh process of its own, the file in the page
// cache for both. Reports MB/s (median of 2 × 5 loads, the processes alternating) and the peak RSS the first load adds
// over the process's start: the file's bytes once is the floor, a second full copy doubles it.
// Run as a script (`node --import tsx --expose-gc bench/suites/torch-load.ts FILE`) it is
// our side's measuring process.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createModel, readTorchCheckpoint, writeTorchCheckpoint } from '../../ts';
import { stateEntries } from '../../ts/models/weights';
import type { TorchReference } from '../reference';
import { median, Result } from './types';

const REPS = 5;
const ROUNDS = 2;

interface Measured {
  seconds: number[];
  peakMiB: number;
}

const TORCH_SIDE = `
import json, resource, sys, time, torch
f = sys.argv[1]
start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter(); sd = torch.load(f, weights_only=True); seconds = [time.perf_counter() - t]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start
for _ in range(${REPS - 1}):
    del sd
    t = time.perf_counter(); sd = torch.load(f, weights_only=True); seconds.append(time.perf_counter() - t)
print(json.dumps({"seconds": seconds, "peakMiB": peak / 1024}))
`;

/** Our side, in this process: first load (its peak RSS growth), then the timed repeats. */
function measureOurs(file: string): Measured {
  const gc = (globalThis as { gc?: () => void }).gc!;
  gc();
  const start = process.resourceUsage().maxRSS;
  let t = performance.now();
  let sd: unknown = readTorchCheckpoint(file);
  const seconds = [(performance.now() - t) / 1000];
  const peakMiB = (process.resourceUsage().maxRSS - start) / 1024;
  for (let i = 1; i < REPS; i++) {
    sd = null;
    gc();
    t = performance.now();
    sd = readTorchCheckpoint(file);
    seconds.push((performance.now() - t) / 1000);
  }
  void sd;
  return { seconds, peakMiB };
}

/** All rounds' times; the largest first-load peak. */
function merged(ms: Measured[]): Measured {
  return { seconds: ms.flatMap((m) => m.seconds), peakMiB: Math.max(...ms.map((m) => m.peakMiB)) };
}

function run(cmd: string, args: string[]): Measured {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`torch-load bench: ${cmd} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Measured;
}

export async function torchLoadSuite(torch: TorchReference | null): Promise<Result[]> {
  const python = process.env.PYTHON ?? 'python3';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-torch-load-'));
  const file = path.join(dir, 'r100.pt');
  try {
    // torch.save's own file where torch is present; ours otherwise (the same layout).
    if (torch !== null) {
      const save = `import sys, torch; sys.path.insert(0, ${JSON.stringify(path.join(__dirname, '..', '..', 'test', 'fixtures'))}); from torch_iresnet import IResNet; torch.save(IResNet("second", (3, 13, 30, 3)).state_dict(), ${JSON.stringify(file)})`;
      const r = spawnSync(python, ['-c', save], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`torch-load bench: torch.save failed:\n${r.stderr}`);
    } else {
      const model = createModel('r100');
      writeTorchCheckpoint(file, stateEntries(model, file));
      model.dispose();
    }
    const mb = fs.statSync(file).size / 1e6;
    // Two rounds, ours and torch's processes alternating, so a busy moment hits both.
    const rounds: [Measured, Measured | null][] = [];
    for (let i = 0; i < ROUNDS; i++) rounds.push([run(process.execPath, ['--import', 'tsx', '--expose-gc', __filename, file]), torch === null ? null : run(python, ['-c', TORCH_SIDE, file])]);
    const ours = merged(rounds.map((r) => r[0]));
    const ref = torch === null ? null : merged(rounds.map((r) => r[1]!));
    const o = mb / median(ours.seconds);
    const t = ref === null ? null : mb / median(ref.seconds);
    return [
      { suite: 'torch-load', name: `r100 .pt (${mb.toFixed(0)} MB, f32) load`, unit: 'MB/s', ours: o, reference: t, ratio: t === null ? null : o / t },
      { suite: 'torch-load', name: `r100 .pt first load: peak RSS growth (file ${(mb / 1.048576).toFixed(0)} MiB)`, unit: 'MiB', ours: ours.peakMiB, reference: ref?.peakMiB ?? null, ratio: null },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) console.log(JSON.stringify(measureOurs(process.argv[2])));
