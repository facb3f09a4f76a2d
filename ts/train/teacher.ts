// The distillation teacher: a network run in eval mode without gradients on the student's
// very batch, or its embeddings precomputed once (`maskfr embed`) and read by sample index.
// Precomputed ones are of the unaugmented, unmasked images: the masked student is pulled
// towards the teacher's view of the bare face.

import { native } from '../native';
import { Tensor, tensor } from '../tensor/tensor';
import { noGrad, tidy } from '../tensor/scope';
import * as ops from '../tensor/ops';
import { createModel, IResNet } from '../models/iresnet';
import type { FoldedIResNet } from '../models/fold';
import { loadOnnxModel } from '../export/onnx-import';
import { loadCheckpoint } from '../models/weights';
import { SafetensorsRows, writeSafetensors } from '../io/safetensors';
import { Batch } from '../data/loader';
import { TrainingData } from '../data/training-data';
import type { Teacher } from './config';

export interface TeacherEmbeddings {
  /** The teacher's embeddings of `batch`, `[b, D]`. */
  embed(batch: Batch): Tensor;
  dispose(): void;
}

/** The teacher of a run whose student trains on `device` (a teacher network runs there too);
 *  a path to an IResNet ONNX file (`teacher: 'model.onnx'`, e.g. insightface's) is imported. */
export function openTeacher(t: Teacher | string, data: TrainingData, device = 'cpu'): TeacherEmbeddings {
  if (typeof t === 'string') {
    const onnx = loadOnnxModel(t).to(device);
    return { embed: (b) => noGrad(() => onnx.forward(ops.to(b.images, device))), dispose: () => onnx.dispose() };
  }
  if ('embeddings' in t) {
    const rows = new SafetensorsRows(t.embeddings, 'embeddings');
    if (rows.rows !== data.length) throw new Error(`${t.embeddings}: ${rows.rows} teacher embeddings, but ${data.path} has ${data.length} images (made for another dataset?)`);
    return { embed: (b) => tensor(rows.read(b.indices), [b.indices.length, rows.dim]), dispose: () => rows.close() };
  }
  const model = createModel(t.network, t.embeddingSize === undefined ? {} : { embedding: t.embeddingSize });
  loadCheckpoint(model, t.weights);
  model.eval().to(device);
  // An MoE teacher embeds each sample with the head its mask flag picks, as the student does.
  return { embed: (b) => noGrad(() => model.forward(ops.to(b.images, device), b.masked)), dispose: () => model.dispose() };
}

/** Embeds every image of `data` in order with `model` (eval mode) into `out`: an F32
 *  `embeddings [N, D]` safetensors file. */
export function writeTeacherEmbeddings(model: IResNet | FoldedIResNet, data: TrainingData, out: string, { batch = 64, size = 112, metadata = {} as Record<string, string>, onProgress = (_done: number) => {} } = {}): void {
  model.eval();
  const chunks: Float32Array[] = [];
  let dim = 0;
  for (let i = 0; i < data.length; i += batch) {
    const imgs = Array.from({ length: Math.min(batch, data.length - i) }, (_, k) => data.sample(i + k).image);
    const e = tidy(() => noGrad(() => model.forward(new Tensor(native.decodeFaces(imgs, size, false, data.path))).toFloat32Array()));
    dim = e.length / imgs.length;
    chunks.push(e);
    onProgress(i + imgs.length);
  }
  const all = new Float32Array(data.length * dim);
  chunks.reduce((at, c) => (all.set(c, at), at + c.length), 0);
  writeSafetensors(out, new Map([['embeddings', { dtype: 'F32', shape: [data.length, dim], data: new Uint8Array(all.buffer) }]]), {
    ...metadata,
    data: data.path,
  });
}
