// Training checkpoints that resume exactly: every module's state dict (arcface_torch names),
// the optimiser's momentum buffers and a small JSON of counters. Each file is written under
// a step-stamped name (temp file + rename) and `state.json`, written last and atomically,
// names the complete set: a crash at any point leaves the previous checkpoint intact.

import fs from 'node:fs';
import path from 'node:path';
import { Module } from '../nn/module';
import { SGD } from '../optim/sgd';
import { tensor } from '../tensor/tensor';
import { tidy } from '../tensor/scope';
import { native } from '../native';
import { loadCheckpoint, saveCheckpoint } from '../models/checkpoint';
import { readSafetensors, writeSafetensors, entryValues, StEntry } from '../io/safetensors';

export interface TrainingCounters {
  step: number;
  epoch: number;
  [name: string]: number | string;
}

interface StateFile {
  counters: TrainingCounters;
  modules: Record<string, string>;
  optimizer: string;
}

export function saveTrainingState(dir: string, modules: Record<string, Module>, opt: SGD, counters: TrainingCounters): void {
  fs.mkdirSync(dir, { recursive: true });
  const stamp = String(counters.step).padStart(8, '0');
  const files: StateFile = { counters, modules: {}, optimizer: `optimizer-${stamp}.safetensors` };
  for (const [name, m] of Object.entries(modules)) {
    files.modules[name] = `${name}-${stamp}.safetensors`;
    saveCheckpoint(m, path.join(dir, files.modules[name]));
  }
  const buffers = new Map<string, StEntry>(
    opt.buffers.map((b, i) => [`momentum.${i}`, { dtype: 'F32', shape: [...b.shape], data: new Uint8Array(b.toFloat32Array().buffer) }]),
  );
  writeSafetensors(path.join(dir, files.optimizer), buffers, { lr: String(opt.lr) });
  const previous = readState(dir);
  const tmp = path.join(dir, `.state.json.${process.pid}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify(files, null, 2));
  fs.renameSync(tmp, path.join(dir, 'state.json'));
  // Only now is the old set unreferenced.
  if (previous !== null) {
    for (const f of [...Object.values(previous.modules), previous.optimizer]) {
      if (!Object.values(files.modules).includes(f) && f !== files.optimizer) fs.rmSync(path.join(dir, f), { force: true });
    }
  }
}

function readState(dir: string): StateFile | null {
  const f = path.join(dir, 'state.json');
  return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as StateFile) : null;
}

/** Restores modules and optimiser from `dir`; returns the counters to continue from. */
export function loadTrainingState(dir: string, modules: Record<string, Module>, opt: SGD): TrainingCounters {
  const state = readState(dir);
  if (state === null) throw new Error(`${dir}: no training checkpoint (state.json missing)`);
  const missing = Object.keys(modules).filter((m) => !(m in state.modules));
  if (missing.length > 0) throw new Error(`${dir}: the checkpoint has no ${missing.join(', ')} (it has ${Object.keys(state.modules).join(', ')})`);
  for (const [name, m] of Object.entries(modules)) loadCheckpoint(m, path.join(dir, state.modules[name]));
  const st = readSafetensors(path.join(dir, state.optimizer));
  if (st.tensors.size !== opt.buffers.length) {
    throw new Error(`${dir}: the optimiser state has ${st.tensors.size} buffers, this optimiser ${opt.buffers.length}`);
  }
  tidy(() =>
    opt.buffers.forEach((b, i) => {
      const e = st.tensors.get(`momentum.${i}`)!;
      if (e.shape.join() !== b.shape.join()) throw new Error(`${dir}: momentum ${i} has shape [${e.shape.join(', ')}], the parameter [${b.shape.join(', ')}]`);
      native.copyInto(b.handle('loadTrainingState'), tensor(new Float32Array(entryValues(e)), e.shape).handle('loadTrainingState'));
    }),
  );
  opt.lr = Number(st.metadata.lr);
  return state.counters;
}
