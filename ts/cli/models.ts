// `maskfr models`, `maskfr fold`, `maskfr export`, `maskfr fruits`: the model commands.

import fs from 'node:fs';
import { createModel, MODELS, IResNet, IResNetConfig, IResNetMoE } from '../models/iresnet';
import { complexity } from '../models/complexity';
import { loadCheckpoint, saveCheckpoint } from '../models/weights';
import { FoldedIResNet, foldBatchNorm } from '../models/fold';
import { exportIResNet, saveOnnx } from '../export/iresnet-onnx';
import { importOnnx } from '../export/onnx-import';
import { checkMfrKit } from '../export/mfr-kit';
import { isOnnxFile, readWeightsFile } from '../io/weights-file';
import { randn } from '../tensor/random';
import { noGrad, tidy } from '../tensor/scope';
import { Command, integerOption, Option, Parsed, required } from './args';

const fmt = (n: number, unit: number, digits = 1) => (n / unit).toFixed(digits);

export const MODEL: Option = { name: 'model', value: 'NAME', required: true, help: 'the network, from `maskfr models`' };

/** For `embed` and `eval`: the head an MoE model embeds unmasked images with (an MFR report's
 *  masked probes always take the masked head). */
/** `--embedding D`, for commands that load table-model weights trained at another size. */
export const EMBEDDING: Option = { name: 'embedding', value: 'D', help: 'the embedding size the weights were trained with (a table model)', defaultHelp: "the model's" };

export const MASKED: Option = { name: 'masked', value: 'true|false', help: 'an MoE model (NAME-moe): embed with its masked head (true) or its unmasked one (a report\'s masked probes always take the masked head)', defaultHelp: 'false' };

/** The `--model` network with `--masked` applied: an MoE embeds every face with the head it
 *  names; a plain model refuses the option (its one head serves both). */
function createRouted(p: Parsed, overrides: Partial<IResNetConfig> = {}): IResNet {
  const name = required(p, 'model');
  const m = createModel(name, overrides);
  const flag = p.options.get('masked');
  if (flag === undefined) return m;
  if (flag !== 'true' && flag !== 'false') throw new Error(`${p.command}: --masked must be true or false, got ${flag}`);
  if (!(m instanceof IResNetMoE)) {
    m.dispose();
    throw new Error(`${p.command}: --masked picks a head of an MoE model (${name}-moe); ${name} has one head for all faces`);
  }
  m.maskedByDefault = flag === 'true';
  return m;
}

export const listModels: Command = {
  summary: 'list the IResNet table: blocks per stage, stride placement, params, GMACs, heads',
  usage: 'maskfr models',
  options: [],
  example: 'maskfr models',
  run() {
    const width = Math.max(...Object.keys(MODELS).map((n) => n.length)) + 1;
    console.log(`${'name'.padEnd(width)} blocks per stage   stride on  params    GMACs@112  heads`);
    for (const [name, c] of Object.entries(MODELS)) {
      const x = complexity(c);
      const cols = [name.padEnd(width), `[${c.layers.join(', ')}]`.padEnd(18), (c.stride === 'first' ? '1st conv' : '2nd conv').padEnd(10), `${fmt(x.params, 1e6)}M`.padStart(7), fmt(x.macs, 1e9, 2).padStart(10)];
      console.log(`${cols.join(' ')}  ${c.moe ? '2 (MoE: masked, unmasked)' : '1'}`);
    }
    return 0;
  },
};

/** For the model commands: a table name, or an IResNet ONNX file to import (insightface's
 *  zoo, arcface_torch's torch2onnx, ours). */
export const MODEL_OR_ONNX: Option = { ...MODEL, value: 'NAME|M.onnx', help: 'the network, from `maskfr models`, or an IResNet ONNX file to import (insightface / arcface_torch exports; its weights come with it)' };

/** The network of an IResNet ONNX file, its layout said in one line. */
function importedModel(name: string): IResNet | FoldedIResNet {
  const imp = importOnnx(name);
  console.log(`${name}: IResNet [${imp.config.layers.join(', ')}] × [${imp.config.widths.join(', ')}], stride on the ${imp.config.stride} conv, ${imp.config.embedding}-d${imp.tableName ? ` (${imp.tableName})` : ''}, ${imp.model instanceof FoldedIResNet ? 'BatchNorm fused' : 'every BatchNorm kept'}`);
  return imp.model;
}

/** For `embed` and `eval`: `--model` with its weights. An ONNX file brings its own weights
 *  and one head, so `--weights`, `--masked` and `--embedding` are refused with it; a table
 *  model needs `--weights` and takes `--masked` (createRouted). */
export function weightedModel(p: Parsed, overrides: Partial<IResNetConfig> = {}): IResNet | FoldedIResNet {
  const name = required(p, 'model');
  if (isOnnxFile(name)) {
    const given = ['weights', 'masked', 'embedding'].filter((k) => p.options.has(k));
    if (given.length > 0) throw new Error(`${p.command}: ${given.map((k) => `--${k}`).join(' and ')} with --model ${name}: an ONNX file holds its own weights, embedding size and one head`);
    return importedModel(name);
  }
  const weights = p.options.get('weights');
  if (weights === undefined) throw new Error(`${p.command}: --weights is required with a table model (--model ${name}); only --model M.onnx brings its own`);
  const m = createRouted(p, overrides);
  try {
    loadCheckpoint(m, weights);
  } catch (e) {
    m.dispose();
    throw e;
  }
  return m;
}

/** For `embed` and `eval`: weights a table model needs and an ONNX file refuses. */
export const WEIGHTS_UNLESS_ONNX = (help: string): Option => ({ name: 'weights', value: 'W.safetensors|W.pt', help, defaultHelp: 'none; required unless --model is M.onnx' });

/** The named model with `weights` (safetensors or `.pt`/`.pth`) loaded; a checkpoint written
 *  by `maskfr fold` loads into the folded form of the architecture. An ONNX file is imported:
 *  an IResNet when it keeps every BN, else folded. */
function loadModel(command: string, name: string, weights?: string): IResNet | FoldedIResNet {
  if (isOnnxFile(name)) {
    if (weights !== undefined) throw new Error(`${command}: --weights with --model ${name}: an ONNX file holds its own weights`);
    return importedModel(name);
  }
  const m = createModel(name).eval();
  if (weights === undefined) return m;
  if (!fs.existsSync(weights)) throw new Error(`${command}: weights file ${weights} does not exist`);
  // A .pt keeps no metadata: there only a folded network's stem conv has a bias.
  const file = readWeightsFile(weights);
  if (file.metadata.folded !== 'true' && !file.tensors.has('conv1.bias')) {
    loadCheckpoint(m, weights);
    return m;
  }
  const f = foldBatchNorm(m);
  m.dispose();
  loadCheckpoint(f, weights);
  return f;
}

function unfolded(command: string, m: IResNet | FoldedIResNet): IResNet {
  if (m instanceof FoldedIResNet) throw new Error(`${command}: the weights are already folded`);
  return m;
}

/** Median seconds of one forward of a single 112×112 image on this machine's threads. */
function latency(model: IResNet | FoldedIResNet, runs = 10): number {
  const times: number[] = [];
  tidy(() =>
    noGrad(() => {
      const x = randn([1, 3, model.config.inputSize, model.config.inputSize]);
      model.forward(x);
      for (let i = 0; i < runs; i++) {
        const t = performance.now();
        tidy(() => model.forward(x));
        times.push((performance.now() - t) / 1000);
      }
    }),
  );
  return times.sort((a, b) => a - b)[runs >> 1];
}

const paramCount = (m: { parameters(): { numel: number }[] }) => m.parameters().reduce((s, p) => s + p.numel, 0);

export const fold: Command = {
  summary: 'fold every BatchNorm into the convs and the fc (plain models)',
  usage: 'maskfr fold IN.safetensors|IN.pt OUT.safetensors|OUT.pt --model NAME',
  options: [MODEL],
  example: 'maskfr fold runs/wf42m_resnet240_kd/model.safetensors folded.safetensors --model resnet240',
  run: foldWeights,
};

function foldWeights(p: Parsed): number {
  const [input, output] = p.positional;
  if (input === undefined || output === undefined) throw new Error(`fold: usage: ${fold.usage}`);
  const name = required(p, 'model');
  const m = unfolded('fold', loadModel('fold', name, input));
  const f = foldBatchNorm(m);
  saveCheckpoint(f, output, { model: name, folded: 'true' });
  const macs = complexity(m.config).macs;
  console.log(`           params      GMACs  latency (1 image, ${process.env.RAYON_NUM_THREADS ?? 'all'} threads)`);
  console.log(`unfolded   ${fmt(paramCount(m), 1e6, 2).padStart(7)}M  ${fmt(macs, 1e9, 2).padStart(7)}  ${(1000 * latency(m)).toFixed(1)} ms`);
  console.log(`folded     ${fmt(paramCount(f), 1e6, 2).padStart(7)}M  ${fmt(macs, 1e9, 2).padStart(7)}  ${(1000 * latency(f)).toFixed(1)} ms`);
  console.log(`wrote ${output}`);
  f.dispose();
  m.dispose();
  return 0;
}

export const exportOnnx: Command = {
  summary: 'ONNX export: input [N,3,112,112] RGB 0–255, output embedding; an MoE adds masked_embedding (its masked head: take each face from the output its flag names)',
  usage: 'maskfr export --model NAME|M.onnx --out M.onnx [options]',
  options: [
    MODEL_OR_ONNX,
    { name: 'weights', value: 'W.safetensors|W.pt', help: 'weights to load (plain or written by `maskfr fold`)', defaultHelp: 'none: the initial weights' },
    { name: 'out', value: 'M.onnx', required: true, help: 'the ONNX file to write' },
    { name: 'opset', value: 'N', default: '13', help: 'ONNX opset (13 or newer)' },
    { name: 'fold', help: 'fold every BatchNorm first (plain models)' },
    { name: 'external-data', help: 'write the weights to M.onnx.data beside the model (done anyway past protobuf\'s 2 GiB)' },
  ],
  example: 'maskfr export --model resnet240 --weights runs/wf42m_resnet240_kd/model.safetensors --out resnet240.onnx --fold',
  run: writeOnnx,
};

function writeOnnx(p: Parsed): number {
  const m = loadModel('export', required(p, 'model'), p.options.get('weights'));
  const out = required(p, 'out');
  const model = p.flags.has('fold') ? foldBatchNorm(unfolded('export --fold', m)) : m;
  const saved = saveOnnx(model, out, { opset: integerOption(p, 'opset', 1), externalData: p.flags.has('external-data') ? 'always' : 'auto' });
  const data = saved.external ? ` (weights in ${saved.files[1]})` : '';
  console.log(`wrote ${out}: ${saved.opTypes.length} nodes, ${(saved.bytes / 1e6).toFixed(1)} MB${data}${p.flags.has('fold') ? ', BatchNorm folded' : ''}`);
  for (const problem of checkMfrKit(out, saved.files.slice(1))) console.warn(`warning: the MFR challenge kit would refuse or misread this model: ${problem}`);
  if (model !== m) model.dispose();
  m.dispose();
  return 0;
}

type Ort = typeof import('onnxruntime-node');

function loadOrt(): Ort {
  try {
    return require('onnxruntime-node') as Ort;
  } catch {
    throw new Error('fruits: needs onnxruntime-node (npm i onnxruntime-node)');
  }
}

/** FRUITS' latency: onnxruntime with one intra-op and one inter-op thread, 50 single-image
 *  runs, the 6th smallest time (ms). */
export async function fruitsLatency(model: Uint8Array | string, side = 112): Promise<number> {
  const ort = loadOrt();
  const session = await ort.InferenceSession.create(model as Uint8Array, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
  const x = new ort.Tensor('float32', Float32Array.from({ length: 3 * side * side }, (_, i) => (i * 37) % 256), [1, 3, side, side]);
  const times: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t = performance.now();
    await session.run({ [session.inputNames[0]]: x });
    times.push(performance.now() - t);
  }
  await session.release();
  return times.sort((a, b) => a - b)[5];
}

function verdict(ms: number): string {
  return [100, 500, 1000].map((b) => `${ms <= b ? 'within' : 'over'} ${b} ms`).join(', ');
}

export const fruits: Command = {
  summary: "FRUITS latency of an ONNX file, or of a table model's unfolded and folded exports compared",
  usage: 'maskfr fruits M.onnx | maskfr fruits [options]',
  options: [
    { name: 'model', value: 'NAME', default: 'resnet240', help: 'without M.onnx: the network to export unfolded and folded' },
    { name: 'weights', value: 'W.safetensors|W.pt', help: 'its weights', defaultHelp: 'none: the initial weights' },
  ],
  example: 'maskfr fruits --model resnet240',
  run: fruitsLatencies,
};

async function fruitsLatencies(p: Parsed): Promise<number> {
  const [file] = p.positional;
  if (file !== undefined) {
    if (!fs.existsSync(file)) throw new Error(`fruits: ${file} does not exist`);
    // The path, not the bytes: onnxruntime finds external data beside the file.
    const ms = await fruitsLatency(file);
    console.log(`${file}: ${ms.toFixed(1)} ms per face (6th fastest of 50, 1 thread): ${verdict(ms)}`);
    return 0;
  }
  // The seed's reason to fold: the same network, unfolded vs folded, under the budget.
  const name = required(p, 'model');
  const m = unfolded('fruits', loadModel('fruits', name, p.options.get('weights')));
  const plainMs = await fruitsLatency(exportIResNet(m).bytes);
  const f = foldBatchNorm(m);
  const foldedMs = await fruitsLatency(exportIResNet(f).bytes);
  console.log(`${name} unfolded: ${plainMs.toFixed(1)} ms per face: ${verdict(plainMs)}`);
  console.log(`${name} folded:   ${foldedMs.toFixed(1)} ms per face: ${verdict(foldedMs)}  (${(plainMs / foldedMs).toFixed(2)}× faster)`);
  f.dispose();
  m.dispose();
  return 0;
}
