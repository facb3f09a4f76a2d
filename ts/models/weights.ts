// Model checkpoints as safetensors, with arcface_torch's state-dict names: weights, BN
// running statistics and num_batches_tracked (I64), so a file maps one to one to the
// PyTorch model. Written atomically (temp file + rename).

import { Tensor, tensor } from '../tensor/tensor';
import { tidy } from '../tensor/scope';
import { native } from '../native';
import { Module, stateDifferences } from '../nn/module';
import { BatchNorm } from '../nn/layers';
import { readSafetensors, writeSafetensors, entryValues, StEntry } from '../io/safetensors';

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

export function saveCheckpoint(model: Module, file: string, metadata: Record<string, string> = {}): void {
  const entries = new Map<string, StEntry>();
  for (const [k, t] of [...model.namedParameters(), ...model.namedBuffers()]) {
    entries.set(k, { dtype: 'F32', shape: [...t.shape], data: new Uint8Array(t.toFloat32Array().buffer) });
  }
  for (const [name, bn] of batchNorms(model)) {
    entries.set(key(name, NBT), { dtype: 'I64', shape: [], data: new Uint8Array(BigInt64Array.of(BigInt(bn.numBatchesTracked)).buffer) });
  }
  writeSafetensors(file, entries, { format: 'pt', ...metadata });
}

/** Loads `file` into `model`; refuses, listing every difference, when names, shapes or
 *  dtypes do not match the model's state dict. Returns the file's metadata. */
export function loadCheckpoint(model: Module, file: string): Record<string, string> {
  const st = readSafetensors(file);
  const want = stateShapes(model);
  const problems = stateDifferences(want, new Map([...st.tensors].map(([k, e]) => [k, e.shape])), 'file');
  for (const [k, e] of st.tensors) {
    const dtype = k.endsWith(NBT) ? 'I64' : 'F32';
    if (want.has(k) && e.dtype !== dtype) problems.push(`${k}: dtype ${e.dtype} in the file, ${dtype} expected`);
  }
  if (problems.length > 0) throw new Error(`${file} does not fit the model:\n  ${problems.join('\n  ')}`);
  tidy(() => {
    for (const [k, t] of [...model.namedParameters(), ...model.namedBuffers()]) {
      const e = st.tensors.get(k)!;
      const src: Tensor = tensor(new Float32Array(entryValues(e)), e.shape);
      native.copyInto(t.handle('loadCheckpoint'), src.handle('loadCheckpoint'));
    }
  });
  for (const [name, bn] of batchNorms(model)) bn.numBatchesTracked = Number(entryValues(st.tensors.get(key(name, NBT))!)[0]);
  return st.metadata;
}
