// Pretrained starts (a recipe's `init`): a backbone's weights loaded by name into the freshly
// built network, from an arcface_torch .pt/.pth, a safetensors or an ONNX file that keeps its
// BatchNorms. What was loaded, missing, unexpected or of another shape is reported (the
// trainer prints it and writes init.json); any difference refuses the start unless
// allowMismatch, which leaves those tensors as initialised. And the frozen stages.

import type { IResNet } from '../models/iresnet';
import type { Module } from '../nn/module';
import { copyState, stateShapes } from '../models/weights';
import { StEntry } from '../io/safetensors';
import { isOnnxFile, readWeightsFile } from '../io/weights-file';
import { onnxStateDict } from '../export/onnx-import';
import type { InitFrom } from './config';

export interface InitReport {
  weights: string;
  /** The model's tensors given the file's values. */
  loaded: string[];
  /** The model's tensors the file lacks (num_batches_tracked, a counter, is not missed). */
  missing: string[];
  /** The file's tensors the model has no place for. */
  unexpected: string[];
  /** Tensors of both whose shapes (or dtype) differ. */
  mismatched: { name: string; file: number[]; model: number[]; dtype?: string }[];
  /** What reading did beyond copying (a DDP prefix stripped, …). */
  notes: string[];
}

const NBT = /(^|\.)num_batches_tracked$/;
/** Differences named in a refusal; the rest are counted (a wrong network differs everywhere). */
const LISTED = 20;

/** The file's state dict as safetensors entries. */
function readState(file: string): { tensors: Map<string, StEntry>; notes: string[] } {
  if (!isOnnxFile(file)) return readWeightsFile(file);
  let state;
  try {
    state = onnxStateDict(file).state;
  } catch (e) {
    const why = (e as Error).message;
    if (!/fused into the convs/.test(why)) throw e;
    throw new Error(`init: ${why}. Start from the weights it was exported from (arcface_torch's backbone.pth or model.pt), or use it as a teacher (teacher: '${file}')`, { cause: e });
  }
  const tensors = new Map<string, StEntry>();
  for (const [k, t] of state) {
    tensors.set(k, { dtype: 'F32', shape: [...t.shape], data: new Uint8Array(t.toFloat32Array().buffer) });
    t.dispose();
  }
  return { tensors, notes: [] };
}

/** Every difference, one line each. */
function differences(r: InitReport): string[] {
  return [
    ...r.missing.map((k) => `missing ${k}`),
    ...r.unexpected.map((k) => `unexpected ${k}`),
    ...r.mismatched.map((m) => (m.dtype !== undefined ? `${m.name}: dtype ${m.dtype} in the file, F32 in the model` : `${m.name}: shape [${m.file.join(', ')}] in the file, [${m.model.join(', ')}] in the model`)),
  ];
}

/** Loads `init.weights` into `model` by name; refuses, listing every difference, unless
 *  `allowMismatch` (the differing tensors then keep their initialisation). */
export function loadInit(model: IResNet, init: InitFrom): InitReport {
  const { tensors, notes } = readState(init.weights);
  const want = stateShapes(model);
  const r: InitReport = { weights: init.weights, loaded: [], missing: [], unexpected: [...tensors.keys()].filter((k) => !want.has(k)), mismatched: [], notes };
  for (const [name, shape] of want) {
    const e = tensors.get(name);
    const dtype = NBT.test(name) ? 'I64' : 'F32';
    if (e === undefined) {
      if (!NBT.test(name)) r.missing.push(name);
    } else if (e.shape.join() !== shape.join() || e.dtype !== dtype) {
      r.mismatched.push({ name, file: e.shape, model: shape, ...(e.dtype === dtype ? {} : { dtype: e.dtype }) });
    } else r.loaded.push(name);
  }
  const diff = differences(r);
  if (diff.length > 0 && init.allowMismatch !== true) {
    const c = model.config;
    const listed = [...diff.slice(0, LISTED), ...(diff.length > LISTED ? [`… and ${diff.length - LISTED} more`] : [])];
    throw new Error(
      `init: ${init.weights} does not fit the network (IResNet [${c.layers.join(', ')}] × [${c.widths.join(', ')}], ${c.embedding}-d): ${r.loaded.length} tensors fit, ${diff.length} differ:\n  ${listed.join('\n  ')}\nallowMismatch: true starts anyway, those tensors as initialised`,
    );
  }
  copyState(model, tensors, init.weights, new Set(r.loaded));
  return r;
}

/** The report in a few lines, for the run's output. */
export function describeInit(r: InitReport): string[] {
  const diff = differences(r);
  return [
    `init: loaded ${r.loaded.length} tensors from ${r.weights}${r.notes.map((n) => `; ${n}`).join('')}`,
    ...(diff.length > 0 ? [`init: ${diff.length} differences allowed (allowMismatch), kept as initialised: ${diff.join('; ')}`] : []),
  ];
}

/** Freezes the stem (conv1, bn1, prelu) and the first `stages` stages; returns their names. */
export function freezeStages(model: IResNet, stages: number): string[] {
  const parts: [string, Module][] = [
    ['conv1', model.conv1],
    ['bn1', model.bn1],
    ['prelu', model.prelu],
    ...model.stages.slice(0, stages).map((s, i): [string, Module] => [`layer${i + 1}`, s]),
  ];
  parts.forEach(([, m]) => m.freeze());
  return parts.map(([name]) => name);
}
