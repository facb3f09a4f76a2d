// A first Ctrl-C or SIGTERM at any time of a run loses nothing: during start-up the run stops
// before its first step (a resumed checkpoint untouched), after the last step it writes the
// final checkpoint and weights first; a rank failing during start-up stops every rank at once,
// naming it. Each through real processes and signals, bounded in time.

import test from 'ava';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveConfig, train, TrainConfig, writeSyntheticDataset } from '../ts';
import { startJob } from './helpers/jobs';

const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js'); // npm run build:ts
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-stopping-'));
const data = writeSyntheticDataset(path.join(root, 'data'), { identities: 6, perIdentity: 8, heldOut: 4, pairs: 20, seed: 7, quality: 90 });
const recipe = (name: string, extra: Partial<TrainConfig> = {}): { file: string; cfg: TrainConfig } => {
  const cfg: TrainConfig = { network: 'tiny', data: data.rec, output: path.join(root, name), steps: 2, batchSize: 4, logEvery: 1, checkpointEvery: 0, loaderThreads: 1, ...extra };
  const file = path.join(root, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(cfg));
  return { file, cfg };
};

/** Every file under `dir` with a hash of its bytes. */
const snapshot = (dir: string): Record<string, string> =>
  Object.fromEntries(
    fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort().map((f) => [f, crypto.createHash('sha1').update(fs.readFileSync(path.join(dir, f))).digest('hex')]),
  );

function exited(p: ChildProcess, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const timer = setTimeout(() => p.kill('SIGKILL'), ms);
  return new Promise((resolve) => p.on('exit', (code, signal) => (clearTimeout(timer), resolve({ code, signal }))));
}

/** `maskfr train` whose start-up reads its verification set from a pipe: once the trainer has
 *  opened it (start-up under way), a SIGINT, then the set. */
async function signalDuringStartUp(name: string, args: string[], output: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  const fifo = path.join(root, `${name}.bin`);
  spawnSync('mkfifo', [fifo]);
  const { file } = recipe(name, { output, steps: 4, verification: [fifo] });
  const p = spawn(process.execPath, [cli, 'train', '--config', file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (out += d));
  const end = exited(p, 60_000);
  const pipe = await fs.promises.open(fifo, 'w'); // returns once the trainer opened it
  p.kill('SIGINT');
  await new Promise((r) => setTimeout(r, 200));
  await pipe.writeFile(fs.readFileSync(data.bin)).catch(() => {}); // a trainer killed by the signal reads nothing
  await pipe.close().catch(() => {});
  return { ...(await end), out };
}

test('a Ctrl-C during start-up stops before the first step, exit 130: nothing written, a resumed checkpoint untouched', async (t) => {
  const fresh = path.join(root, 'fresh');
  const a = await signalDuringStartUp('fresh', [], fresh);
  t.is(a.code, 130, a.out);
  t.regex(a.out, /stopped before the first step; nothing was trained/);
  t.false(fs.existsSync(path.join(fresh, 'checkpoint', 'state.json')), 'no checkpoint');
  t.false(fs.existsSync(path.join(fresh, 'model.safetensors')), 'no final weights');

  const { cfg } = recipe('resumed');
  (await train(resolveConfig(cfg), { quiet: true })).model.dispose();
  const before = snapshot(cfg.output);
  const b = await signalDuringStartUp('resumed-again', ['--resume'], cfg.output);
  t.is(b.code, 130, b.out);
  t.regex(b.out, /stopped before step 3; the checkpoint of step 2 in .* is as it was: continue with --resume/);
  const after = snapshot(cfg.output);
  delete after['config.json']; // rewritten with the resumed run's recipe
  delete before['config.json'];
  t.deepEqual(after, before, 'the checkpoint, metrics and weights are as they were');
});

test('a Ctrl-C after the last step: the final checkpoint and weights are written, and the run ends as done (exit 0)', async (t) => {
  const { file, cfg } = recipe('at-end', { verification: [data.bin], verifyEvery: 0 });
  const p = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'helpers', 'signal-at-end.ts')], { env: { ...process.env, CONFIG: file }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (out += d));
  const { code, signal } = await exited(p, 120_000);
  t.is(signal, null, out);
  t.is(code, 0, out);
  t.regex(out, /"status":"done","step":2/);
  t.true(fs.existsSync(path.join(cfg.output, 'model.safetensors')), 'the final weights');
  t.is((JSON.parse(fs.readFileSync(path.join(cfg.output, 'checkpoint', 'state.json'), 'utf8')) as { counters: { step: number } }).counters.step, 2);
});

test('a rank that fails during start-up stops every rank at once, each naming it and its error', async (t) => {
  const { file, cfg } = recipe('one-rank', { commTimeoutSeconds: 60 });
  const run = async (...args: string[]) => {
    const job = startJob(['launch', '--nproc-per-node', '2', '--master-port', '0', '--', 'train', '--config', file, '--quiet', ...args]);
    t.teardown(job.kill);
    const start = Date.now();
    const timer = setTimeout(job.kill, 120_000);
    const end = await job.exit;
    clearTimeout(timer);
    return { ...end, ms: Date.now() - start, out: job.output() };
  };
  const first = await run();
  t.is(first.code, 0, first.out);
  // Rank 1's shard of the classifier, cut short: only rank 1 reads it.
  const shard = path.join(cfg.output!, 'checkpoint', 'head.rank1-00000002.safetensors');
  fs.truncateSync(shard, 100);
  const resumed = await run('--resume', '--set', 'steps=4');
  t.is(resumed.code, 1, resumed.out);
  t.regex(resumed.out, new RegExp(`--resume: rank 1 failed: ${shard.replace(/[.]/g, '\\.')}`), 'rank 0 names rank 1 and its error');
  t.true(resumed.ms < 30_000, `stopped after ${resumed.ms} ms (the communicator's timeout: 60 s)`);
});
