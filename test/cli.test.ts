import test from 'ava';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

test('maskfr --help lists the commands', (t) => {
  const r = run('--help');
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /Usage: maskfr <command>/);
  t.regex(r.stdout, /info/);
});

test('maskfr info prints the machine as JSON', (t) => {
  const r = run('info');
  t.is(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout) as { computeThreads: number };
  t.true(info.computeThreads >= 1);
});

test('an unknown command exits 2 and says so', (t) => {
  const r = run('fly');
  t.is(r.status, 2);
  t.regex(r.stderr, /unknown command 'fly'/);
});

test('the demo training runs from ts-node (as users run training scripts) and learns', (t) => {
  const r = spawnSync(process.execPath, [require.resolve('ts-node/dist/bin.js'), path.join(__dirname, '..', 'ts', 'demo', 'train-toy.ts')], {
    encoding: 'utf8',
    env: { ...process.env, MASKFR_DEMO_STEPS: '60' },
  });
  t.is(r.status, 0, r.stderr);
  const acc = /held-out accuracy after training: ([\d.]+)%/.exec(r.stdout);
  t.truthy(acc, r.stdout);
  t.true(Number(acc![1]) >= 50, `accuracy ${acc![1]}%`);
});
