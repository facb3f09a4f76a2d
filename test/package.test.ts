import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.join(__dirname, '..');

test('npm pack → install in an empty folder without Rust → the CLI, require and import work', (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-pack-'));
  // The build (native addon and dist/) has run already; packing must not rebuild.
  const packed = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', out], { cwd: root, encoding: 'utf8' })) as {
    filename: string;
    files: { path: string }[];
  }[];
  const files = packed[0].files.map((f) => f.path);
  for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'native/index.js', 'native/maskfr.linux-x64-gnu.node', 'binding.gyp', 'scripts/build-native.js']) {
    t.true(files.includes(f), `${f} is in the tarball`);
  }
  t.true(files.includes('crates/node/src/lib.rs') && files.includes('Cargo.lock'), 'the Rust sources, for npm rebuild where no prebuilt fits');
  t.false(files.some((f) => f.startsWith('ts/') || f.startsWith('test/') || f.includes('/tests/')), 'TS sources and tests stay out');

  const app = path.join(out, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  // No cargo on PATH: the prebuilt addon is all there is.
  const PATH = (process.env.PATH ?? '').split(path.delimiter).filter((p) => !fs.existsSync(path.join(p, 'cargo'))).join(path.delimiter);
  const env = { ...process.env, PATH };
  const install = spawnSync('npm', ['install', path.join(out, packed[0].filename), '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: app, env, encoding: 'utf8' });
  t.is(install.status, 0, install.stderr);
  t.is(spawnSync('cargo', ['--version'], { env }).status === 0, false, 'cargo is out of reach');

  const cli = spawnSync(path.join(app, 'node_modules', '.bin', 'maskfr'), ['--help'], { cwd: app, env, encoding: 'utf8' });
  t.is(cli.status, 0, cli.stderr);
  t.regex(cli.stdout, /Usage: maskfr <command>/);
  const cjs = spawnSync(process.execPath, ['-e', "const m = require('maskfr'); console.log(typeof m.train, typeof m.createModel, m.createModel('tiny').parameters().length)"], { cwd: app, env, encoding: 'utf8' });
  t.is(cjs.stdout.trim(), 'function function 58', cjs.stderr);
  const esm = spawnSync(process.execPath, ['--input-type=module', '-e', "import { plan, evaluateMaskedFaces } from 'maskfr'; console.log(typeof evaluateMaskedFaces, plan({ model: 'r50', classes: 1000, gpus: 1, batch: 8 }).params)"], { cwd: app, env, encoding: 'utf8' });
  t.is(esm.stdout.trim(), 'function 43590848', esm.stderr);
  t.true(fs.existsSync(path.join(app, 'node_modules', 'maskfr', 'dist', 'index.d.ts')), 'typed');

  // The README's example script, run against the installed package (tsx from this repo).
  fs.copyFileSync(path.join(root, 'examples', 'train-synthetic.ts'), path.join(app, 'train-synthetic.ts'));
  const tsx = path.join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');
  const ex = spawnSync(process.execPath, [tsx, 'train-synthetic.ts', '3'], { cwd: app, env, encoding: 'utf8' });
  t.is(ex.status, 0, ex.stderr);
  t.regex(ex.stdout, /held-out verification after 3 steps: [\d.]+% ± [\d.]+; weights in runs\/small\/model\.safetensors/);
});
