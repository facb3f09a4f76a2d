// A training set, whichever form it takes on disk: a RecordIO `.rec` (InsightFace layout) or
// an image folder. Sample i is the same image for the loader, for precomputed teacher
// embeddings and for the class count.

import fs from 'node:fs';
import { RecordDataset } from './recordio';
import { FolderDataset } from './image-folder';
import { Loader, LoaderOptions } from './loader';

export interface TrainingData {
  path: string;
  length: number;
  /** Identities (labels are 0 … classes − 1). */
  classes: number;
  /** Sample `i`: its identity and encoded image, in one read. */
  sample(i: number): { label: number; image: Buffer };
  loader(o: LoaderOptions): Loader;
}

export function openTrainingData(p: string): TrainingData {
  if (!fs.existsSync(p)) throw new Error(`${p}: no such training data (expected a .rec file or an image folder)`);
  if (fs.statSync(p).isDirectory()) {
    const f = FolderDataset.scan(p);
    return {
      path: p,
      length: f.length,
      classes: f.identities,
      sample: (i) => {
        const s = f.sample(i);
        return { label: s.label, image: s.body };
      },
      loader: (o) => Loader.fromFolder(f, o),
    };
  }
  const ds = RecordDataset.open(p);
  // Without InsightFace's identity header, the labels themselves say how many there are.
  const classes = ds.identities?.length ?? Array.from({ length: ds.length }, (_, i) => ds.sample(i).label).reduce((m, l) => Math.max(m, l + 1), 0);
  return {
    path: p,
    length: ds.length,
    classes,
    sample: (i) => {
      const s = ds.sample(i);
      return { label: s.label, image: s.body };
    },
    loader: (o) => Loader.fromRecord(ds, o),
  };
}
