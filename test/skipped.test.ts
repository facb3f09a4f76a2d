// skipCorrupt's count is the run's, not rank 0's, and an epoch's, not a resume's: summed over
// the ranks in the progress line and metrics.jsonl, and carried across --resume in state.json,
// so maxCorruptShare is judged over the whole epoch.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkpointCounters, Loader, RecordDataset, resolveConfig, train, TrainConfig, writeRecordDataset, writeSyntheticDataset } from '../ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-skipped-'));
const good = writeSyntheticDataset(path.join(root, 'data'), { identities: 4, perIdentity: 4, heldOut: 2, pairs: 4, seed: 9, quality: 90 }).rec;
const SEED = 5;

/** The dataset indices of each batch of epoch 0 on `rank` of `world`, as the trainer's loader draws them. */
async function batchesOf(rank: number, world: number): Promise<number[][]> {
  const out: number[][] = [];
  for await (const b of Loader.fromRecord(good, { batch: 4, seed: SEED, rank, world, threads: 1 }).epoch(0)) {
    out.push([...b.indices]);
    b.images.dispose();
  }
  return out;
}

/** The good dataset with images `bad` replaced by bytes that are no image. */
function corrupted(name: string, bad: number[]): string {
  const ds = RecordDataset.open(good);
  const rec = path.join(root, `${name}.rec`);
  writeRecordDataset(rec, Array.from({ length: ds.length }, (_, i) => ({ label: ds.sample(i).label, body: bad.includes(i) ? Buffer.from('not an image') : ds.sample(i).body })));
  return rec;
}

const recipe = (name: string, data: string, extra: Partial<TrainConfig>): TrainConfig => ({
  network: 'tiny', data, output: path.join(root, name), batchSize: 4, seed: SEED, warmupSteps: 0, logEvery: 1, checkpointEvery: 0, loaderThreads: 1, skipCorrupt: true, ...extra,
});
const skippedAt = (output: string) =>
  Object.fromEntries(fs.readFileSync(path.join(output, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; skipped?: number }).filter((r) => r.skipped !== undefined).map((r) => [r.step, r.skipped]));

test('a resumed epoch counts the corrupt samples skipped before the resume: maxCorruptShare is judged over the whole epoch', async (t) => {
  const [firstBatch, , thirdBatch] = await batchesOf(0, 1);
  // One corrupt image in the epoch's first batch, one in its third: 2 of 16, where 0.1 allows 1.
  const data = corrupted('split', [firstBatch[0], thirdBatch[0]]);
  const allowed = recipe('split', data, { steps: 2, maxCorruptShare: 0.2 });
  (await train(resolveConfig(allowed), { quiet: true })).model.dispose();
  // Resumed with nothing left to train, its final checkpoint is written again: the count stays.
  (await train(resolveConfig(allowed), { quiet: true, resume: true })).model.dispose();
  t.deepEqual(checkpointCounters(path.join(allowed.output, 'checkpoint'))?.skipped, [1]);
  const more = await train(resolveConfig({ ...allowed, steps: 4 }), { quiet: true, resume: true });
  more.model.dispose();
  t.deepEqual(skippedAt(allowed.output), { 1: 1, 2: 1, 3: 2, 4: 2 }, 'the epoch\'s count goes on from the checkpoint\'s');
  const dir = path.join(allowed.output, 'checkpoint');
  const state = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as { counters: Record<string, unknown> };
  fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ ...state, counters: { ...state.counters, skipped: [1, 2] } }));
  t.throws(() => checkpointCounters(dir), { message: /state\.json: not a usable training state \(counters\.skipped must be one integer ≥ 0 per rank \(1\), got \[1,2\]\)/ });

  const strict = recipe('strict', data, { steps: 2, maxCorruptShare: 0.1 });
  (await train(resolveConfig(strict), { quiet: true })).model.dispose();
  await t.throwsAsync(train(resolveConfig({ ...strict, steps: 4 }), { quiet: true, resume: true }), {
    message: new RegExp(`^${data.replace(/[.]/g, '\\.')}: 2 of the 16 samples of epoch 0 on this rank are corrupt \\(12\\.50%, 1 of them before the resume\\), more than maxCorruptShare 0\\.1 allows \\(10\\.00%\\); the first since the resume: .*record ${thirdBatch[0] + 1}: `),
  });
});

test('on 2 ranks the progress line and metrics.jsonl count every rank\'s skipped samples', async (t) => {
  const [zero, one] = [await batchesOf(0, 2), await batchesOf(1, 2)];
  const data = corrupted('ranks', [zero[0][0], one[0][0], one[0][1]]); // rank 0: 1, rank 1: 2 in the first batch
  const cfg = recipe('ranks', data, { steps: 1, maxCorruptShare: 0.5 });
  const config = path.join(root, 'ranks.json');
  fs.writeFileSync(config, JSON.stringify(cfg));
  const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js'); // npm run build:ts
  const r = spawnSync(process.execPath, [cli, 'launch', '--nproc-per-node', '2', '--master-port', '0', '--', 'train', '--config', config], { encoding: 'utf8', timeout: 120_000 });
  t.is(r.status, 0, r.stderr);
  t.deepEqual(skippedAt(cfg.output), { 1: 3 });
  t.regex(r.stdout, /\] 1\/1 .*skipped 3 /);
  const state = JSON.parse(fs.readFileSync(path.join(cfg.output, 'checkpoint', 'state.json'), 'utf8')) as { counters: { skipped: number[] } };
  t.deepEqual(state.counters.skipped, [1, 2], 'each rank\'s own count, for a resume');
});
