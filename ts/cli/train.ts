// Training commands: `maskfr train` (one rank, or each rank under the launcher),
// `maskfr launch` (starts the ranks) and `maskfr embed` (a teacher's embeddings of a dataset).

import { loadConfig } from '../train/config';
import { NonFiniteLoss, train } from '../train/trainer';
import { launch } from '../parallel/launch';
import { createModel } from '../models/iresnet';
import { loadCheckpoint } from '../models/weights';
import { openTrainingData } from '../data/training-data';
import { writeTeacherEmbeddings } from '../train/teacher';
import { parseArgs, required } from './args';

/** `--set key=value` overrides (values parsed as JSON when they are, else strings). */
function takeOverrides(argv: string[]): { rest: string[]; overrides: Record<string, unknown> } {
  const rest: string[] = [];
  const overrides: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] !== '--set') {
      rest.push(argv[i]);
      continue;
    }
    const kv = argv[++i] ?? '';
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`train: --set needs key=value, got '${kv}'`);
    const v = kv.slice(eq + 1);
    try {
      overrides[kv.slice(0, eq)] = JSON.parse(v);
    } catch {
      overrides[kv.slice(0, eq)] = v;
    }
  }
  return { rest, overrides };
}

export async function trainCommand(argv: string[]): Promise<number> {
  const { rest, overrides } = takeOverrides(argv);
  const p = parseArgs('train', rest, ['config', 'device', 'precision'], ['resume', 'quiet']);
  const file = required('train', p, 'config');
  for (const k of ['device', 'precision']) if (p.options.has(k)) overrides[k] = p.options.get(k);
  const cfg = loadConfig(file, overrides);
  if (!p.flags.has('quiet')) console.log(`training on ${cfg.device}${cfg.precision === 'f32' ? '' : ` in ${cfg.precision}`}`);
  try {
    const r = await train(cfg, { resume: p.flags.has('resume'), quiet: p.flags.has('quiet') });
    r.model.dispose();
    if (r.status === 'interrupted') return 130;
    if (r.weights !== null) console.log(`trained ${r.step} steps; weights in ${r.weights}`);
    return 0;
  } catch (e) {
    if (e instanceof NonFiniteLoss) {
      console.error(`train: ${e.message}`);
      return 3;
    }
    throw e;
  }
}

const SCRIPT = /\.[cm]?[jt]s$/;

export async function launchCommand(argv: string[]): Promise<number> {
  const sep = argv.indexOf('--');
  if (sep < 0) throw new Error('launch: usage: maskfr launch --nproc-per-node N [--nnodes K --node-rank R --master-addr A --master-port P] -- <maskfr command or script> [args]');
  const p = parseArgs('launch', argv.slice(0, sep), ['nproc-per-node', 'nnodes', 'node-rank', 'master-addr', 'master-port']);
  const num = (name: string, d?: number) => {
    const v = p.options.get(name);
    if (v === undefined && d !== undefined) return d;
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n)) throw new Error(`launch: --${name} must be an integer, got ${v ?? 'nothing'}`);
    return n;
  };
  const target = argv.slice(sep + 1);
  // A maskfr command runs through this very CLI entry; a script path runs as given.
  const runArgs = target.length > 0 && !SCRIPT.test(target[0]) ? [process.argv[1], ...target] : target;
  return launch({
    nprocPerNode: num('nproc-per-node'),
    nnodes: num('nnodes', 1),
    nodeRank: num('node-rank', 0),
    masterAddr: p.options.get('master-addr') ?? '127.0.0.1',
    masterPort: num('master-port', 29500),
    argv: runArgs,
  });
}

export function embedCommand(argv: string[]): number {
  const p = parseArgs('embed', argv, ['model', 'weights', 'data', 'out', 'batch']);
  const [name, weights, data, out] = ['model', 'weights', 'data', 'out'].map((k) => required('embed', p, k));
  const model = createModel(name);
  loadCheckpoint(model, weights);
  const ds = openTrainingData(data);
  const t = performance.now();
  writeTeacherEmbeddings(model, ds, out, { batch: Number(p.options.get('batch') ?? 64), metadata: { network: name, weights } });
  console.log(`wrote ${ds.length} embeddings of ${data} by ${name} to ${out} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  model.dispose();
  return 0;
}
