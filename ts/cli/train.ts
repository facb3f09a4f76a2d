// Training commands: `maskfr train` (one rank, or each rank under the launcher),
// `maskfr launch` (starts the ranks) and `maskfr embed` (a teacher's embeddings of a dataset).

import { loadConfig } from '../train/config';
import { NonFiniteLoss, train } from '../train/trainer';
import { launch } from '../parallel/launch';
import { openTrainingData } from '../data/training-data';
import { writeTeacherEmbeddings } from '../train/teacher';
import { Command, integerOption, Parsed, required } from './args';
import { MASKED, MODEL_OR_ONNX, weightedModel, WEIGHTS_UNLESS_ONNX } from './models';

/** `--set key=value` overrides, values parsed as JSON when they are, else strings. */
function overridesOf(values: readonly string[]): Record<string, unknown> {
  const overrides: Record<string, unknown> = {};
  for (const kv of values) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`train: --set needs key=value, got '${kv}'`);
    const v = kv.slice(eq + 1);
    try {
      overrides[kv.slice(0, eq)] = JSON.parse(v);
    } catch {
      overrides[kv.slice(0, eq)] = v;
    }
  }
  return overrides;
}

export const trainCommand: Command = {
  summary: 'train from a recipe (one rank, or each rank under `maskfr launch`)',
  usage: 'maskfr train --config FILE [options]',
  options: [
    { name: 'config', value: 'FILE', required: true, help: 'the recipe: a .ts/.js module exporting a TrainConfig, or JSON' },
    { name: 'device', value: 'cpu|cuda|cuda:N|auto', help: 'where to train', defaultHelp: "the config's" },
    { name: 'precision', value: 'f32|f16|bf16', help: 'the forward and backward precision (master weights stay f32)', defaultHelp: "the config's" },
    { name: 'set', value: 'key=value', repeated: true, help: 'override one config field (the value read as JSON when it is)', defaultHelp: 'none' },
    { name: 'resume', help: "continue from the output folder's training state" },
    { name: 'overwrite', help: "start over in an output folder that holds a run, removing that run's checkpoints, metrics and weights" },
    { name: 'quiet', help: 'no progress lines' },
  ],
  example: 'maskfr train --config configs/synthetic_small.ts --device auto --set steps=50 --set lr=0.05',
  run: trainFromConfig,
};

async function trainFromConfig(p: Parsed): Promise<number> {
  const overrides = overridesOf(p.lists.get('set') ?? []);
  const file = required(p, 'config');
  for (const k of ['device', 'precision']) if (p.options.has(k)) overrides[k] = p.options.get(k);
  const cfg = loadConfig(file, overrides);
  if (!p.flags.has('quiet')) console.log(`training on ${cfg.device}${cfg.precision === 'f32' ? '' : ` in ${cfg.precision}`}`);
  try {
    const r = await train(cfg, { resume: p.flags.has('resume'), overwrite: p.flags.has('overwrite'), quiet: p.flags.has('quiet') });
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

export const launchCommand: Command = {
  summary: 'start the ranks of a run on this node: a maskfr command or a script after `--`',
  usage: 'maskfr launch --nproc-per-node N [options] -- <maskfr command or script> [args]',
  options: [
    { name: 'nproc-per-node', value: 'N', required: true, help: 'ranks on this node' },
    { name: 'nnodes', value: 'K', default: '1', help: 'nodes in the run' },
    { name: 'node-rank', value: 'R', default: '0', help: "this node's index" },
    { name: 'master-addr', value: 'A', default: '127.0.0.1', help: "rank 0's node address" },
    { name: 'master-port', value: 'P', default: '29500', help: "rank 0's port" },
  ],
  after: 'the maskfr command (or .js/.ts script) each rank runs, with its arguments',
  example: 'maskfr launch --nproc-per-node 4 -- train --config configs/synthetic_small.ts',
  run: startRanks,
};

async function startRanks(p: Parsed): Promise<number> {
  if (p.after === null) throw new Error(`launch: usage: ${launchCommand.usage}`);
  const target = p.after;
  // A maskfr command runs through this very CLI entry; a script path runs as given.
  const runArgs = target.length > 0 && !SCRIPT.test(target[0]) ? [process.argv[1], ...target] : target;
  return launch({
    nprocPerNode: integerOption(p, 'nproc-per-node', 1),
    nnodes: integerOption(p, 'nnodes', 1),
    nodeRank: integerOption(p, 'node-rank', 0),
    masterAddr: required(p, 'master-addr'),
    masterPort: integerOption(p, 'master-port', 0),
    argv: runArgs,
  });
}

export const embedCommand: Command = {
  summary: "a teacher's embeddings of a dataset, in dataset order, for `teacher: { embeddings: FILE }`",
  usage: 'maskfr embed --model NAME --weights W.safetensors|W.pt --data PATH --out FILE [options] | maskfr embed --model M.onnx --data …',
  options: [
    MODEL_OR_ONNX,
    WEIGHTS_UNLESS_ONNX("the teacher's weights"),
    { name: 'data', value: 'PATH', required: true, help: 'the training data: X.rec or an image folder' },
    { name: 'out', value: 'FILE', required: true, help: 'the embeddings file to write (safetensors)' },
    { name: 'batch', value: 'N', default: '64', help: 'images per forward' },
    MASKED,
  ],
  example: 'maskfr embed --model resnet600 --weights runs/wf42m_resnet600/model.safetensors --data data/train.rec --out teacher.safetensors',
  run: embedDataset,
};

function embedDataset(p: Parsed): number {
  const [name, data, out] = ['model', 'data', 'out'].map((k) => required(p, k));
  const weights = p.options.get('weights');
  const batch = integerOption(p, 'batch', 1); // before any loading: a bad argument costs nothing
  const model = weightedModel(p);
  const ds = openTrainingData(data);
  const t = performance.now();
  writeTeacherEmbeddings(model, ds, out, { batch, metadata: { network: name, ...(weights === undefined ? {} : { weights }) } });
  console.log(`wrote ${ds.length} embeddings of ${data} by ${name} to ${out} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  model.dispose();
  return 0;
}
