// Model checkpoints as safetensors, with arcface_torch's state-dict names: weights, BN
// running statistics and num_batches_tracked (I64), so a file maps one to one to the
// PyTorch model. Written atomically (temp file + rename). A `.pt` / `.pth` name means
// torch.save's format instead, for loading and saving alike.

import { Tensor, tensor } from '../tensor/tensor';
import { tidy } from '../tensor/scope';
import { native } from '../native';
import { Module, stateDifferences } from '../nn/module';
import { BatchNorm } from '../nn/layers';
import { entryValues, StEntry } from '../io/safetensors';
import { readWeightsFile, writeWeightsFile } from '../io/weights-file';

const NBT = 'num_batches_tracked';

function batchNorms(model: Module): [string, BatchNorm][] {
  return model.namedModules().filter((e): e is [string, BatchNorm] => e[1] instanceof BatchNorm);
}

const key = (prefix: string, name: string) => (prefix ? `${prefix}.${name}` : name);

/** Every tensor of the model's state dict with its shape, as PyTorch names them. */
export function stateShapes(model: Module): Map<string, number[]> {
  const m = new Map<string, number[]>([...model.namedParameters(), ...model.namedBuffers()].map(([k, t]) => [k, [...t.shape]]));
  for (const [name] of batchNorms(model)) m.set(key(name, NBT), []);
  return m;
}

/** A NaN or infinite value where only finite ones may be: no checkpoint is written from it. */
export class NonFiniteTensor extends Error {}

/** Where `values` first holds NaN or ±Infinity, in words; null when every value is finite. */
export function nonFiniteAt(values: ArrayLike<number>): string | null {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return `${values[i]} (value ${i} of ${values.length})`;
  return null;
}

/** The model's state dict as safetensors entries, each tensor read back once (on a GPU, the
 *  only sync) and checked there; a NaN or infinite value is refused naming the tensor. */
export function stateEntries(model: Module, what: string): Map<string, StEntry> {
  const entries = new Map<string, StEntry>();
  for (const [k, t] of [...model.namedParameters(), ...model.namedBuffers()]) {
    const v = t.toFloat32Array();
    const at = nonFiniteAt(v);
    if (at !== null) throw new NonFiniteTensor(`${what}: '${k}' holds ${at}`);
    entries.set(k, { dtype: 'F32', shape: [...t.shape], data: new Uint8Array(v.buffer) });
  }
  for (const [name, bn] of batchNorms(model)) {
    entries.set(key(name, NBT), { dtype: 'I64', shape: [], data: new Uint8Array(BigInt64Array.of(BigInt(bn.numBatchesTracked)).buffer) });
  }
  return entries;
}

/** Writes the model's weights (a `.pt` / `.pth` as torch.save, without the metadata, which a
 *  state dict has no place for); refuses (NonFiniteTensor) when one is NaN or infinite. */
export function saveCheckpoint(model: Module, file: string, metadata: Record<string, string> = {}): void {
  writeWeightsFile(file, stateEntries(model, `${file} not written`), { format: 'pt', ...metadata });
}

/** Differences listed of each kind (missing, unexpected, shape or dtype); the rest are counted. */
const LISTED = 6;

/** Loads `file` into `model`; refuses, listing the differences (leading with the network the
 *  file's metadata names), when names, shapes or dtypes do not match the model's state dict,
 *  and when a value is NaN or infinite. Returns the file's metadata. */
export function loadCheckpoint(model: Module, file: string): Record<string, string> {
  const st = readWeightsFile(file);
  const want = stateShapes(model);
  const problems = stateDifferences(want, new Map([...st.tensors].map(([k, e]) => [k, e.shape])), 'file');
  for (const [k, e] of st.tensors) {
    const dtype = k.endsWith(NBT) ? 'I64' : 'F32';
    if (want.has(k) && e.dtype !== dtype) problems.push(`${k}: dtype ${e.dtype} in the file, ${dtype} expected`);
  }
  if (problems.length > 0) {
    const network = st.metadata.network;
    const lead = typeof network === 'string' ? `${file} holds a ${network} (its metadata says so) and does not fit the model` : `${file} does not fit the model`;
    const kind = (p: string) => /^(missing|unexpected) /.exec(p)?.[1] ?? 'other';
    const seen = new Map<string, number>();
    const listed = problems.filter((p) => seen.set(kind(p), (seen.get(kind(p)) ?? 0) + 1).get(kind(p))! <= LISTED);
    const more = listed.length < problems.length ? [`… and ${problems.length - listed.length} more`] : [];
    throw new Error(`${lead}: ${problems.length} differences:\n  ${[...listed, ...more].join('\n  ')}`);
  }
  copyState(model, st.tensors, file);
  return st.metadata;
}

/** Copies `tensors` (read from `file`, for messages), already checked to fit, into the
 *  model's parameters and buffers of those names: every one, or only those in `names`;
 *  num_batches_tracked where the file has it. Every value is checked finite before the first
 *  copy, so a refused file leaves the model as it was. */
export function copyState(model: Module, tensors: Map<string, StEntry>, file: string, names?: ReadonlySet<string>): void {
  const wanted = (k: string) => names === undefined || names.has(k);
  const values = [...model.namedParameters(), ...model.namedBuffers()]
    .filter(([k]) => wanted(k))
    .map(([k, t]) => {
      const v = new Float32Array(entryValues(tensors.get(k)!));
      const at = nonFiniteAt(v);
      if (at !== null) throw new Error(`${file}: '${k}' holds ${at}; these weights are not usable (a diverged run's?)`);
      return [t, v] as const;
    });
  tidy(() => {
    for (const [t, v] of values) {
      const src: Tensor = tensor(v, [...t.shape]);
      native.copyInto(t.handle('copyState'), src.handle('copyState'));
    }
  });
  for (const [name, bn] of batchNorms(model)) {
    const e = tensors.get(key(name, NBT));
    if (e !== undefined && wanted(key(name, NBT))) bn.numBatchesTracked = Number(entryValues(e)[0]);
  }
}
