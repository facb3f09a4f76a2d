// PyTorch checkpoints: a `torch.save`d state dict (torch ≥ 1.6's zip format) read and
// written by the native reader (crates/torch-format), which never executes the file's
// pickle: only the globals a state dict needs are accepted, and every size is checked
// against the archive before anything is allocated.

import { native } from '../native';
import { StDType, StEntry, StFile } from './safetensors';

export interface TorchStateDict extends StFile {
  /** What reading did beyond copying, in words (a nested state dict, DDP names). */
  notes: string[];
}

/** The state dict of `file`: floats (f32, f16, bf16, f64) as F32, integers as stored; a state
 *  dict nested under 'state_dict', 'model', … is found; DDP's `module.` prefix is stripped. */
export function readTorchCheckpoint(file: string): TorchStateDict {
  const c = native.readTorchCheckpoint(file);
  const tensors = new Map<string, StEntry>();
  for (const t of c.tensors) tensors.set(t.name, { dtype: t.dtype as StDType, shape: t.shape, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) });
  const notes = [
    ...(c.nestedIn ? [`the state dict sat under '${c.nestedIn}'`] : []),
    ...(c.strippedDdp ? ["DDP's 'module.' prefix was stripped from every name"] : []),
  ];
  return { tensors, metadata: {}, notes };
}

/** Writes `tensors` as a `torch.save`d state dict (`torch.load(f, weights_only=True)` takes
 *  it), atomically (temp file + rename). */
export function writeTorchCheckpoint(file: string, tensors: Map<string, StEntry>): void {
  const list = [...tensors].map(([name, e]) => ({ name, dtype: e.dtype, shape: e.shape, data: Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength) }));
  native.writeTorchCheckpoint(file, list);
}
