// 1:1 verification at scale: all-vs-all scoring of 20k × 20k embeddings (2·10⁸ pairs) into
// TAR/FNMR levels — pairs scored per second, the statistics kept and the process's peak
// memory (the score matrix alone would be 1.6 GB). Run in a fresh process; no PyTorch
// counterpart.

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Result } from './types';

export async function evalSuite(): Promise<Result[]> {
  const helper = path.join(__dirname, '..', 'helpers', 'eval.ts');
  const r = spawnSync(process.execPath, ['--import', 'tsx', helper], { encoding: 'utf8', env: { ...process.env, N: '20000' } });
  if (r.status !== 0) throw new Error(`eval bench failed:\n${r.stderr}`);
  const m = JSON.parse(r.stdout.trim().split('\n').pop()!) as { seconds: number; pairs: number; bytes: number; startMiB: number; peakMiB: number };
  const row = (name: string, unit: string, ours: number): Result => ({ suite: 'eval', name, unit, ours, reference: null, ratio: null });
  return [
    row(`all-vs-all 20k × 512 (${(m.pairs / 1e6).toFixed(0)}M pairs)`, 'Mpairs/s', m.pairs / m.seconds / 1e6),
    row('all-vs-all 20k: score statistics held', 'MiB', m.bytes / 2 ** 20),
    row(`all-vs-all 20k: process peak (${m.startMiB.toFixed(0)} MiB at start, 39 MiB of embeddings)`, 'MiB', m.peakMiB),
  ];
}
