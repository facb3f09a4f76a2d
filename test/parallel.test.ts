import test, { ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeSyntheticDataset } from '../ts';
import { Job, startJob, waitUntil } from './helpers/jobs';
import { relErr } from './helpers/tensors';

const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
// Rank processes inherit node's arguments: tsx lets them run the .ts helpers.
const maskfr = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 240_000 });
const helper = (name: string) => path.join(__dirname, 'helpers', name);

interface RankOut {
  buckets: number;
  losses: number[];
  first: number;
  backbone: number[][];
  head: number[];
}

function dpRun(world: number, env: NodeJS.ProcessEnv = {}): RankOut[] {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), `maskfr-dp${world}-`));
  const r = maskfr(['launch', '--nproc-per-node', String(world), '--master-port', '0', '--', helper('dp-step.ts')], { OUT: out, ...env });
  if (r.status !== 0) throw new Error(`launch W=${world} failed:\n${r.stderr}`);
  return Array.from({ length: world }, (_, k) => JSON.parse(fs.readFileSync(path.join(out, `rank-${k}.json`), 'utf8')) as RankOut);
}

test('data-parallel backbone + sharded classifier: the same losses and weights on 1, 2 and 4 ranks', (t) => {
  const [one] = dpRun(1);
  t.true(one.losses.every(Number.isFinite) && one.losses[2] !== one.losses[0], `losses ${one.losses}`);
  for (const world of [2, 4]) {
    const ranks = dpRun(world);
    for (const r of ranks) {
      t.true(relErr(r.losses, one.losses) < 1e-5, `W=${world}: losses ${r.losses} vs ${one.losses}`);
      // One step's gradients agree within 5e-8 whatever the world size (measured; crates/parallel/tests);
      // three SGD steps of this net amplify the summation-order rounding to about 1e-4 of
      // the updates (measured 1.1e-4 at most, on 2 and 4 ranks alike).
      const err = Math.max(...r.backbone.map((p, i) => relErr(p, one.backbone[i])));
      t.true(err < 3e-4, `W=${world}: backbone relative error ${err}`);
    }
    // The shards, in rank order, are the single process's class centres.
    const head = ranks.flatMap((r) => r.head);
    t.deepEqual(ranks.map((r) => r.first), world === 2 ? [0, 6] : [0, 3, 6, 9]);
    t.true(relErr(head, one.head) < 1e-4, `W=${world}: classifier relative error ${relErr(head, one.head)}`);
  }
});

test('gradient buckets reduced in the background during the backward give exactly the synchronous result', (t) => {
  const sync = dpRun(2);
  const overlapped = dpRun(2, { BUCKET_BYTES: '20000' });
  t.true(overlapped[0].buckets > 5, `${overlapped[0].buckets} buckets`);
  // Exactly equal (a difference count, not a deep diff: the arrays are too big to print).
  const flat = (rs: RankOut[]) => rs.flatMap((r) => [...r.losses, ...r.backbone.flat(), ...r.head]);
  const [a, b] = [flat(overlapped), flat(sync)];
  t.is(a.length, b.length);
  t.is(a.filter((v, i) => v !== b[i]).length, 0, 'values that differ');
  // Sent as f16: the same first loss, backbone updates within f16's rounding (2⁻¹¹ relative
  // per gradient; measured 2.9e-4 relative over three steps), and not identical (the rounding ran).
  const f16 = dpRun(2, { BUCKET_BYTES: '20000', BUCKET_COMPRESS: 'f16' });
  t.is(f16[0].losses[0], sync[0].losses[0]);
  const [u16, u32] = [f16[0].backbone.flat(), sync[0].backbone.flat()];
  t.log(`f16 buckets: backbone updates off by ${relErr(u16, u32).toExponential(2)}`);
  t.true(relErr(u16, u32) <= 5e-3, `f16 buckets: backbone updates off by ${relErr(u16, u32)}`);
  t.true(u16.some((v, i) => v !== u32[i]));
});

function ranks(mode: string): Promise<{ code: number | null; out: string; ms: number }> {
  const port = String(20000 + Math.floor(Math.random() * 20000));
  const env = (rank: number) => ({ ...process.env, RANK: String(rank), WORLD_SIZE: '2', MASTER_PORT: port, MODE: mode, TIMEOUT_MS: '2000' });
  const t0 = Date.now();
  const zero = spawn(process.execPath, ['--import', 'tsx', helper('die.ts')], { env: env(0) });
  const one = spawn(process.execPath, ['--import', 'tsx', helper('die.ts')], { env: env(1) });
  let out = '';
  zero.stdout.on('data', (d) => (out += d));
  zero.stderr.on('data', (d) => (out += d));
  return new Promise((resolve) =>
    zero.on('exit', (code) => {
      one.kill('SIGKILL');
      resolve({ code, out, ms: Date.now() - t0 });
    }),
  );
}

test('a rank that dies or stalls makes the others fail with a message naming it, within the timeout', async (t) => {
  const died = await ranks('exit');
  t.not(died.code, 0);
  t.regex(died.out, /waiting for rank 1: connection closed \(the rank exited\?\)/);
  const stalled = await ranks('stall');
  t.not(stalled.code, 0);
  t.regex(stalled.out, /waiting for rank 1: timed out \(is it alive\?\)/);
  t.true(stalled.ms < 15_000, `${stalled.ms} ms`);
});

test('maskfr launch: a failing rank stops the run with its code and name', (t) => {
  const r = maskfr(['launch', '--nproc-per-node', '2', '--master-port', '0', '--', helper('die.ts')], { MODE: 'exit' });
  t.is(r.status, 3, r.stderr);
  t.regex(r.stderr, /launch: failed: rank 1 exited with code 3/);
  const bad = maskfr(['launch', '--nproc-per-node', '0', '--', 'train']);
  t.is(bad.status, 1);
  t.regex(bad.stderr, /--nproc-per-node must be an integer ≥ 1, got 0/);
});

test('maskfr train on 2 ranks: per-rank classifier shards in the checkpoint, resumed by 2 ranks and refused by 1', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-launch-'));
  const data = writeSyntheticDataset(path.join(root, 'data'), { identities: 6, perIdentity: 8, heldOut: 4, pairs: 20, seed: 4, quality: 90 });
  const config = path.join(root, 'c.json');
  const output = path.join(root, 'out');
  fs.writeFileSync(config, JSON.stringify({ network: 'tiny', data: data.rec, output, steps: 4, batchSize: 4, logEvery: 1, checkpointEvery: 2, verification: [data.bin], verifyEvery: 0 }));
  const r = maskfr(['launch', '--nproc-per-node', '2', '--master-port', '0', '--', 'train', '--config', config, '--quiet']);
  t.is(r.status, 0, r.stderr);
  t.deepEqual(fs.readdirSync(path.join(output, 'checkpoint')).sort(), [
    'backbone-00000004.safetensors',
    'head.rank0-00000004.safetensors',
    'head.rank1-00000004.safetensors',
    'optimizer.rank0-00000004.safetensors',
    'optimizer.rank1-00000004.safetensors',
    'state.json',
  ]);
  const more = maskfr(['launch', '--nproc-per-node', '2', '--master-port', '0', '--', 'train', '--config', config, '--quiet', '--resume', '--set', 'steps=6']);
  t.is(more.status, 0, more.stderr);
  const steps = fs.readFileSync(path.join(output, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss?: number });
  t.deepEqual(steps.filter((m) => m.loss !== undefined).map((m) => m.step), [1, 2, 3, 4, 5, 6]);
  const one = maskfr(['train', '--config', config, '--quiet', '--resume', '--set', 'steps=8']);
  t.is(one.status, 1);
  t.regex(one.stderr, /the checkpoint was written by 2 ranks, this run has 1/);
});

/** A run of 2 ranks under `maskfr launch`, started as a shell starts a job, once it is past step 2. */
async function trainingJob(t: ExecutionContext, data: string, name: string, commTimeoutSeconds = 300): Promise<{ job: Job; output: string }> {
  const output = path.join(path.dirname(data), name);
  const config = path.join(path.dirname(data), `${name}.json`);
  fs.writeFileSync(config, JSON.stringify({ network: 'tiny', data, output, steps: 10000, batchSize: 4, logEvery: 1, checkpointEvery: 0, commTimeoutSeconds }));
  const job = startJob(['launch', '--nproc-per-node', '2', '--master-port', '0', '--', 'train', '--config', config, '--quiet']);
  t.teardown(job.kill);
  const metrics = path.join(output, 'metrics.jsonl');
  const stepped = () => fs.existsSync(metrics) && fs.readFileSync(metrics, 'utf8').includes('"step":2');
  await waitUntil(() => stepped() || job.ended(), 60_000);
  if (!stepped()) throw new Error(`${name}: no step 2 (in 60 s):\n${job.output()}`);
  return { job, output };
}

/** The run stopped once: one checkpoint, of every rank at the same step. */
function checkpointedOnce(t: ExecutionContext, output: string, why: string): void {
  const dir = path.join(output, 'checkpoint');
  if (!fs.existsSync(path.join(dir, 'state.json'))) return void t.fail(`${why}: no checkpoint`);
  const state = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as { counters: { step: number }; world: number };
  t.is(state.world, 2);
  const s = String(state.counters.step).padStart(8, '0');
  t.deepEqual(fs.readdirSync(dir).sort(), [
    `backbone-${s}.safetensors`,
    `head.rank0-${s}.safetensors`,
    `head.rank1-${s}.safetensors`,
    `optimizer.rank0-${s}.safetensors`,
    `optimizer.rank1-${s}.safetensors`,
    'state.json',
  ], why);
}

test('one Ctrl-C or SIGTERM, to the process group or the launcher alone: every rank checkpoints at the same step, exit 130', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-stop-'));
  const data = writeSyntheticDataset(path.join(root, 'data'), { identities: 6, perIdentity: 8, heldOut: 4, pairs: 20, seed: 5, quality: 90 }).rec;
  // A terminal's Ctrl-C reaches every process of the job; `kill PID` and a scheduler's SIGTERM
  // the launcher alone; some schedulers signal every process of the job.
  const deliveries: [NodeJS.Signals, 'group' | 'launcher'][] = [['SIGINT', 'group'], ['SIGINT', 'launcher'], ['SIGTERM', 'launcher'], ['SIGTERM', 'group']];
  for (const [signal, to] of deliveries) {
    const { job, output } = await trainingJob(t, data, `${signal}-${to}`);
    job.signal(signal, to);
    const { code } = await job.exit;
    t.is(code, 130, `${signal} to the ${to}:\n${job.output()}`);
    checkpointedOnce(t, output, `${signal} to the ${to}`);
  }
});

// Serial, so it runs before the others: their spawnSync would stop this process's clock.
test.serial('a second Ctrl-C stops the ranks at once, mid-step, without a checkpoint', async (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-twice-'));
  const job = startJob(['launch', '--nproc-per-node', '2', '--master-port', '0', '--', helper('slow-steps.ts')], { OUT: out, STEP_MS: '60000' });
  t.teardown(job.kill);
  const inStep = () => ['step-0', 'step-1'].every((f) => fs.existsSync(path.join(out, f)));
  t.true(await waitUntil(() => inStep() || job.ended(), 30_000) && inStep(), job.output());
  job.signal('SIGINT', 'group');
  await new Promise((r) => setTimeout(r, 500));
  // The launcher and its two ranks (not helpers a rank may start, such as esbuild's service).
  t.true(job.live().includes(job.pid) && job.live(job.pid).length === 2, `after one Ctrl-C the launcher and both ranks run on, to the step's end:\n${job.output()}`);
  const start = Date.now();
  job.signal('SIGINT', 'group');
  const { code } = await job.exit;
  t.is(code, 130);
  t.true(Date.now() - start < 5000, `${Date.now() - start} ms`);
  t.true(await waitUntil(() => job.live().length === 0, 5000), `left running: ${job.live().join(', ')}`);
  t.deepEqual(fs.readdirSync(out).filter((f) => f.startsWith('stopped')), []);
});

test.serial('after a stop the launcher returns what the ranks did: a failing rank\'s code, naming it (not 130); 0 when they completed', async (t) => {
  const stopped = async (env: NodeJS.ProcessEnv) => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-stopcode-'));
    const job = startJob(['launch', '--nproc-per-node', '2', '--master-port', '0', '--', helper('slow-steps.ts')], { OUT: out, STEP_MS: '200', ...env });
    t.teardown(job.kill);
    const inStep = () => ['step-0', 'step-1'].every((f) => fs.existsSync(path.join(out, f)));
    t.true(await waitUntil(() => inStep() || job.ended(), 30_000) && inStep(), job.output());
    job.signal('SIGINT', 'group');
    return { code: (await job.exit).code, out: job.output() };
  };
  const failed = await stopped({ FAIL_RANK: '1' });
  t.is(failed.code, 7, failed.out);
  t.regex(failed.out, /launch: failed: rank 1 exited with code 7/);
  const completed = await stopped({ STOP_CODE: '0' });
  t.is(completed.code, 0, completed.out);
});

test('kill -9 of the launcher: its ranks save a checkpoint and exit, within the communicator timeout', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-orphans-'));
  const data = writeSyntheticDataset(path.join(root, 'data'), { identities: 6, perIdentity: 8, heldOut: 4, pairs: 20, seed: 6, quality: 90 }).rec;
  const { job, output } = await trainingJob(t, data, 'out', 5);
  job.signal('SIGKILL', 'launcher');
  t.is((await job.exit).signal, 'SIGKILL');
  t.true(await waitUntil(() => job.live().length === 0, 10_000), `ranks still running 10 s after their launcher died: ${job.live().join(', ')}\n${job.output()}`);
  checkpointedOnce(t, output, 'orphaned ranks');
});
