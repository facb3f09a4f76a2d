import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { COMMANDS } from '../ts/cli/main';
import { readSafetensors, RecordDataset, writeRecordDataset, writeSyntheticDataset } from '../ts';

const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

test('maskfr --help lists the commands', (t) => {
  const r = run('--help');
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /Usage: maskfr <command>/);
  t.regex(r.stdout, /info/);
});

test('maskfr info prints what its help says: CPU, cores, compute threads, Node version, platform', (t) => {
  const r = run('info');
  t.is(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout) as Record<string, unknown>;
  t.deepEqual(Object.keys(info), ['cpu', 'cores', 'computeThreads', 'node', 'platform']);
  t.true((info.computeThreads as number) >= 1);
  t.regex(run('info', '--help').stdout, /the CPU, its cores, the compute threads, the Node version and the platform as JSON/);
});

test("every command's --help exits 0 and names each option its parser accepts, with a default and an example", (t) => {
  for (const [name, command] of Object.entries(COMMANDS)) {
    const help = run(name, '--help');
    t.is(help.status, 0, `${name}: ${help.stderr}`);
    t.regex(help.stdout, new RegExp(`^maskfr ${name}: [^\\n]+\\n\\nUsage: maskfr ${name}`), name);
    t.regex(help.stdout, /\nExample:\n {2}maskfr /, name);
    // What the parser accepts, from its own refusal of an unknown option.
    const refused = run(name, '--no-such-option');
    t.is(refused.status, 1, name);
    const known = /unknown option --no-such-option \(known: (.*)\)/.exec(refused.stderr)?.[1];
    t.truthy(known, `${name}: ${refused.stderr}`);
    const accepted = known === 'none' ? [] : known!.split(', ');
    t.deepEqual(accepted, command.options.map((o) => `--${o.name}`), name);
    for (const o of accepted) t.regex(help.stdout, new RegExp(`\\n {2}${o}\\b[^\\n]*\\((default: |required)`), `${name} ${o}`);
  }
  t.regex(run('plan', '--help').stdout, /--sample-rate R +partial FC's share of the classes sampled per step \(default: 1\)/);
  t.regex(run('train', '--help').stdout, /--set key=value .*\(default: none; repeatable\)/);
});

test('maskfr doctor reports the CUDA libraries, the driver and the GPUs, or why there are none', (t) => {
  const r = run('doctor');
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^CPU: .*compute threads/);
  t.regex(r.stdout, /libnvrtc \(kernel compiler\): (loaded as \S+|not found \(tried libnvrtc\.so, )/);
  t.regex(r.stdout, /libcudnn \(convolutions\): /);
  t.regex(r.stdout, /GPU \d+: |GPU training unavailable: /);
});

test('an unknown command exits 2 and says so', (t) => {
  const r = run('fly');
  t.is(r.status, 2);
  t.regex(r.stderr, /unknown command 'fly'/);
});

test('the main job (teacher, precomputed embeddings, students with and without KD) runs from ts-node', (t) => {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-demo-'));
  const json = path.join(data, 'figures.json');
  const r = spawnSync(process.execPath, [require.resolve('ts-node/dist/bin.js'), path.join(__dirname, '..', 'ts', 'demo', 'train-faces.ts'), '--json', json], {
    encoding: 'utf8',
    env: { ...process.env, MASKFR_STEPS: '6', MASKFR_STUDENT_STEPS: '3', MASKFR_IDENTITIES: '8', MASKFR_PAIRS: '40', MASKFR_DATA: data },
  });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /raw-pixel baseline on held-out pairs: [\d.]+%/);
  t.regex(r.stdout, /step 3: verify [\d.]+% ± [\d.]+/);
  t.regex(r.stdout, /teacher: [\d.]+% ± [\d.]+ after 6 steps/);
  t.regex(r.stdout, /student with KD: +[\d.]+% ± [\d.]+/);
  t.regex(r.stdout, /student without KD: +[\d.]+% ± [\d.]+/);
  const figures = JSON.parse(fs.readFileSync(json, 'utf8')) as { teacher: { steps: number }; studentWithKd: { steps: number; verification: { accuracy: number } } };
  t.is(figures.teacher.steps, 6);
  t.is(figures.studentWithKd.steps, 3);
  t.true(figures.studentWithKd.verification.accuracy > 0 && figures.studentWithKd.verification.accuracy <= 1);
});

test('a TypeScript recipe loads through the compiled CLI (tsx registered on demand) and is checked', (t) => {
  const r = run('train', '--config', path.join(__dirname, '..', 'configs', 'wf42m_resnet240_student.ts'), '--set', 'data=/nonexistent/train.rec');
  t.is(r.status, 1);
  t.regex(r.stderr, /\/nonexistent\/train\.rec: no such training data/);
  const bad = run('train', '--config', path.join(__dirname, '..', 'configs', 'synthetic_small.ts'), '--set', 'batchSize=0');
  t.is(bad.status, 1);
  t.regex(bad.stderr, /synthetic_small\.ts with --set:\n  batchSize must be an integer ≥ 1, got 0/);
});

test('maskfr models lists the table with r50 at 43.6M params / 6.31 GMACs', (t) => {
  const r = run('models');
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /r50\s+\[3, 4, 14, 3\]\s+2nd conv\s+43\.6M\s+6\.31/);
  t.regex(r.stdout, /resnet240\s+\[3, 25, 88, 3\]\s+1st conv/);
});

test('maskfr fold, export and fruits run on a checkpoint', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-cli-'));
  const src = path.join(__dirname, 'fixtures', 'iresnet_tiny_second.safetensors');
  const folded = path.join(dir, 'folded.safetensors');
  const f = run('fold', src, folded, '--model', 'tiny');
  t.is(f.status, 0, f.stderr);
  t.regex(f.stdout, /unfolded\s+0\.13M[\s\S]*folded\s+0\.12M/);
  const onnx = path.join(dir, 'm.onnx');
  const e = run('export', '--model', 'tiny', '--weights', folded, '--out', onnx);
  t.is(e.status, 0, e.stderr);
  t.true(fs.statSync(onnx).size > 100_000);
  const r = run('fruits', onnx);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /ms per face \(6th fastest of 50, 1 thread\): within 100 ms, within 500 ms, within 1000 ms/);
  const again = run('fold', folded, path.join(dir, 'x.safetensors'), '--model', 'tiny');
  t.is(again.status, 1);
  t.regex(again.stderr, /fold: the weights are already folded/);
});

test('maskfr convert writes a .pt and back bit for bit; fold and export take .pt weights (a folded .pt told by its names)', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-convert-cli-'));
  const src = path.join(__dirname, 'fixtures', 'iresnet_tiny_second.safetensors');
  const [pt, back, folded] = ['tiny.pt', 'back.safetensors', 'folded.pt'].map((f) => path.join(dir, f));
  const c = run('convert', src, pt);
  t.is(c.status, 0, c.stderr);
  t.regex(c.stdout, /wrote .*tiny\.pt: \d+ tensors, [\d.]+ MiB/);
  t.is(run('convert', pt, back).status, 0);
  const bytes = (f: string) => [...readSafetensors(f).tensors].map(([k, e]) => [k, e.dtype, e.shape, Buffer.from(e.data).toString('base64')]);
  t.deepEqual(bytes(back), bytes(src));
  t.is(run('fold', pt, folded, '--model', 'tiny').status, 0);
  const e = run('export', '--model', 'tiny', '--weights', folded, '--out', path.join(dir, 'm.onnx'));
  t.is(e.status, 0, e.stderr);
  t.regex(e.stdout, /wrote .*m\.onnx: \d+ nodes/);
  t.regex(run('convert', pt).stderr, /convert: usage: maskfr convert IN OUT/);
  fs.rmSync(dir, { recursive: true });
});

test('maskfr export --model M.onnx re-exports the imported network, its weights beside it with --external-data', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-onnx-cli-'));
  const src = path.join(__dirname, 'fixtures', 'onnx_tiny_keep_bn.onnx');
  const out = path.join(dir, 'm.onnx');
  const e = run('export', '--model', src, '--out', out, '--external-data');
  t.is(e.status, 0, e.stderr);
  t.regex(e.stdout, /onnx_tiny_keep_bn\.onnx: IResNet \[1, 2, 1, 1\] × \[8, 16, 16, 16\], stride on the second conv, 32-d, every BatchNorm kept/);
  t.regex(e.stdout, /wrote .*m\.onnx: \d+ nodes, [\d.]+ MB \(weights in .*m\.onnx\.data\)/);
  t.true(fs.statSync(`${out}.data`).size > fs.statSync(out).size);
  t.notRegex(e.stderr, /warning/, 'the MFR kit takes it');
  t.regex(run('export', '--model', src, '--weights', 'w.pt', '--out', out).stderr, /export: --weights with --model .*onnx_tiny_keep_bn\.onnx: an ONNX file holds its own weights/);
  fs.rmSync(dir, { recursive: true });
});

test('maskfr eval and embed --model M.onnx run the imported network; --weights and --masked are refused with it, --weights required without', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-onnx-eval-'));
  const data = writeSyntheticDataset(path.join(dir, 'data'), { identities: 4, perIdentity: 2, heldOut: 2, pairs: 20, seed: 5, quality: 90 });
  const onnx = path.join(__dirname, 'fixtures', 'onnx_tiny_torch2onnx.onnx');
  const e = run('eval', '--model', onnx, '--data', data.bin);
  t.is(e.status, 0, e.stderr);
  t.regex(e.stdout, /32-d, BatchNorm fused/);
  t.regex(e.stdout, /verify: [\d.]+% ± [\d.]+ over 20 pairs/);
  const out = path.join(dir, 'teacher.safetensors');
  const m = run('embed', '--model', onnx, '--data', data.rec, '--out', out);
  t.is(m.status, 0, m.stderr);
  t.deepEqual(readSafetensors(out).tensors.get('embeddings')!.shape, [8, 32]);
  t.regex(run('eval', '--model', onnx, '--weights', 'w.pt', '--masked', 'true', '--data', data.bin).stderr, /eval: --weights and --masked with --model .*\.onnx: an ONNX file holds its own weights, embedding size and one head/);
  t.regex(run('embed', '--model', 'tiny', '--data', data.rec, '--out', out).stderr, /embed: --weights is required with a table model \(--model tiny\); only --model M\.onnx brings its own/);
  fs.rmSync(dir, { recursive: true });
});

test('bad model commands say what is wrong', (t) => {
  t.regex(run('export', '--model', 'r51', '--out', '/tmp/x.onnx').stderr, /unknown model 'r51': did you mean r50\? known models are/);
  t.regex(run('plan', '--model', 'r240', '--classes', '10', '--gpus', '1', '--batch', '8').stderr, /unknown model 'r240': did you mean resnet240\? known models are r18, .*resnet1\.2k/);
  t.regex(run('export', '--model', 'tiny').stderr, /export: --out is required/);
  t.regex(run('export', '--model', 'tiny', '--out', 'x', '--bogus').stderr, /unknown option --bogus/);
  t.regex(run('fold', 'a.safetensors').stderr, /usage: maskfr fold IN\.safetensors\|IN\.pt OUT\.safetensors\|OUT\.pt --model NAME/);
});

test('maskfr synthetic-faces, pack and inspect: a dataset written, repacked from a folder, and described', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-data-cli-'));
  const s = run('synthetic-faces', dir, '--identities', '3', '--per-identity', '2', '--held-out', '2', '--pairs', '4');
  t.is(s.status, 0, s.stderr);
  t.true(fs.existsSync(path.join(dir, 'train.rec')) && fs.existsSync(path.join(dir, 'verify.bin')));
  const folder = path.join(dir, 'faces');
  for (const who of ['a', 'b']) {
    fs.mkdirSync(path.join(folder, who), { recursive: true });
    fs.copyFileSync(path.join(__dirname, 'fixtures', 'iresnet_tiny_io.safetensors'), path.join(folder, who, 'notes.txt'));
  }
  const noImages = run('pack', folder, path.join(dir, 'x.rec'));
  t.regex(noImages.stderr, /faces\/a: identity folder without images/);
  // Files that are not images (a pickle named .jpg) are decoded at pack time; more of them
  // than --max-bad allows (1%) refuse the folder, each named, with only their list written.
  const notImage = fs.readFileSync(path.join(dir, 'verify.bin'));
  for (const who of ['a', 'b']) for (const i of [0, 1, 2]) fs.writeFileSync(path.join(folder, who, `${i}.jpg`), notImage);
  const jpeg = RecordDataset.open(path.join(dir, 'train.rec')).sample(0).body;
  for (const i of [0, 1]) fs.writeFileSync(path.join(folder, 'a', `${i}.jpg`), jpeg);
  const refused = run('pack', folder, path.join(dir, 'x.rec'));
  t.is(refused.status, 1);
  t.regex(refused.stderr, /pack: 4 of the 6 images cannot be read or decoded, more than the 1% allowed; nothing written \(all are listed in .*x\.bad\.txt\):\n {2}.*faces\/a\/2\.jpg: \d+ bytes that are neither JPEG nor PNG\n {2}.*faces\/b\/0\.jpg: /);
  t.false(fs.existsSync(path.join(dir, 'x.rec')));
  for (const who of ['a', 'b']) for (const i of [0, 1, 2]) fs.writeFileSync(path.join(folder, who, `${i}.jpg`), jpeg);
  const packed = run('pack', folder, path.join(dir, 'x.rec'));
  t.is(packed.status, 0, packed.stderr);
  t.regex(packed.stdout, /x\.rec and .*x\.idx: 6 images of 2 identities/);
  const png = Buffer.from(run('inspect', path.join(dir, 'train.rec'), '--sheet', path.join(dir, 'sheet.png')).stdout);
  t.regex(png.toString(), /train\.rec: 6 images, 3 identities\nimages per identity: min 2, median 2, max 2\nlandmarks: none \(masks are placed on the aligned template\)\nwrote .*sheet\.png \(6 random samples\)/);
  t.is(fs.readFileSync(path.join(dir, 'sheet.png')).subarray(1, 4).toString(), 'PNG');
  fs.writeFileSync(path.join(dir, 'empty.rec'), '');
  const empty = run('inspect', path.join(dir, 'empty.rec'));
  t.is(empty.status, 1);
  t.regex(empty.stderr, /inspect: .*empty\.rec holds no images: no contact sheet written/);
  t.regex(run('inspect', path.join(dir, 'train.rec'), '--seed', 'x').stderr, /inspect: --seed must be an integer ≥ 0, got x/);
});

test('maskfr augment --preview writes a contact sheet of plain and masked faces', (t) => {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-aug-')), 'p.png');
  const r = run('augment', '--preview', '4', out);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /4 faces, each plain, with a template mask and with a rendered mask/);
  t.is(fs.readFileSync(out).subarray(1, 4).toString(), 'PNG');
});

test('an MoE model trains with maskfr train, then embeds and evaluates with the head --masked names; a plain model refuses the flag', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-moe-cli-'));
  const data = writeSyntheticDataset(path.join(dir, 'data'), { identities: 4, perIdentity: 4, heldOut: 2, pairs: 20, seed: 5, quality: 90 });
  const config = path.join(dir, 'moe.json');
  const recipe = { network: 'tiny-moe', data: data.rec, output: path.join(dir, 'run'), steps: 2, batchSize: 8, warmupSteps: 1, checkpointEvery: 0, loaderThreads: 1, maskProbability: 0.5 };
  fs.writeFileSync(config, JSON.stringify(recipe));
  const trained = run('train', '--config', config, '--quiet');
  t.is(trained.status, 0, trained.stderr);
  const weights = path.join(dir, 'run', 'model.safetensors');
  t.regex(trained.stdout, /trained 2 steps; weights in .*model\.safetensors/);
  const embeddings = (masked: string) => {
    const out = path.join(dir, `${masked}.safetensors`);
    const r = run('embed', '--model', 'tiny-moe', '--weights', weights, '--data', data.rec, '--out', out, '--masked', masked);
    t.is(r.status, 0, r.stderr);
    return Buffer.from(readSafetensors(out).tensors.get('embeddings')!.data);
  };
  t.false(embeddings('true').equals(embeddings('false')), 'the two heads embed differently');
  for (const masked of ['true', 'false']) {
    const e = run('eval', '--model', 'tiny-moe', '--weights', weights, '--data', data.bin, '--masked', masked);
    t.is(e.status, 0, e.stderr);
    t.regex(e.stdout, /verify: [\d.]+% ± [\d.]+ over 20 pairs/);
  }
  for (const [flag, value, min] of [['batch', '0', '1'], ['batch', '2.5', '1'], ['seed', '-1', '0'], ['embedding', 'x', '1']]) {
    t.regex(run('eval', '--model', 'tiny-moe', '--weights', weights, '--data', data.bin, `--${flag}`, value).stderr, new RegExp(`eval: --${flag} must be an integer ≥ ${min}, got ${value.replace('.', '\\.')}`));
  }
  t.regex(run('embed', '--model', 'tiny-moe', '--weights', weights, '--data', data.bin, '--out', 'x', '--batch', '0').stderr, /embed: --batch must be an integer ≥ 1, got 0/);
  t.regex(run('export', '--model', 'tiny', '--out', 'x.onnx', '--opset', 'new').stderr, /export: --opset must be an integer ≥ 1, got new/);
  t.regex(run('eval', '--model', 'tiny-moe', '--weights', weights, '--data', data.bin, '--masked', 'yes').stderr, /--masked must be true or false, got yes/);
  t.regex(run('eval', '--model', 'tiny', '--weights', weights, '--data', data.bin, '--masked', 'true').stderr, /--masked picks a head of an MoE model \(tiny-moe\); tiny has one head/);
  const exported = run('export', '--model', 'tiny-moe', '--weights', weights, '--out', path.join(dir, 'moe.onnx'));
  t.is(exported.status, 0, exported.stderr);
  t.regex(run('export', '--model', 'tiny-moe', '--weights', weights, '--out', path.join(dir, 'x.onnx'), '--fold').stderr, /an MoE model's two heads are not folded; export it unfolded/);
});

test('skipCorrupt: the skipped records are counted in the progress line and metrics.jsonl, batches stay full; past maxCorruptShare the run stops naming the data, the count and the share', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-skip-cli-'));
  const data = writeSyntheticDataset(path.join(dir, 'data'), { identities: 4, perIdentity: 4, heldOut: 2, pairs: 4, seed: 5, quality: 90 });
  const ds = RecordDataset.open(data.rec);
  const rec = path.join(dir, 'bad.rec'); // images 3 and 9 (records 4 and 10) corrupt: 2 of 16
  writeRecordDataset(rec, Array.from({ length: ds.length }, (_, i) => ({ label: ds.sample(i).label, body: i === 3 || i === 9 ? Buffer.from('not an image') : ds.sample(i).body })));
  const train = (name: string, extra: object) => {
    const config = path.join(dir, `${name}.json`);
    const recipe = { network: 'tiny', data: rec, output: path.join(dir, name), steps: 2, batchSize: 8, warmupSteps: 1, checkpointEvery: 0, loaderThreads: 1, logEvery: 1, skipCorrupt: true, ...extra };
    fs.writeFileSync(config, JSON.stringify(recipe));
    return run('train', '--config', config);
  };
  const ok = train('allowed', { maxCorruptShare: 0.2 });
  t.is(ok.status, 0, ok.stderr);
  t.regex(ok.stdout, /\] 2\/2 .*loss .*skipped 2 /);
  const rows = fs.readFileSync(path.join(dir, 'allowed', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { skipped?: number; skippedFirst?: string[] });
  const last = rows.filter((r) => r.skipped !== undefined).at(-1)!;
  t.is(last.skipped, 2);
  t.deepEqual(last.skippedFirst!.map((s) => /bad\.rec: record (\d+): /.exec(s)?.[1]).sort(), ['10', '4']);
  const stopped = train('stopped', {});
  t.is(stopped.status, 1);
  t.regex(stopped.stderr, /bad\.rec: [12] of the 16 samples of epoch 0 on this rank are corrupt \((6\.25|12\.50)%\), more than maxCorruptShare 0\.01 allows \(1\.00%\); the first: .*bad\.rec: record (4|10): /);
});
