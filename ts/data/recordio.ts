// InsightFace datasets in MXNet RecordIO (`train.rec` + `train.idx`). Record 0 with flag 2
// holds the image range `[1, a)` and identity range `[a, b)`: images are records 1…a−1,
// each identity record holds its `[start, end)` image keys. Without that header every
// record is an image labelled by its IRHeader.

import fs from 'node:fs';
import { native } from '../native';

export interface Identity {
  label: number;
  /** Image keys `[start, end)`. */
  start: number;
  end: number;
}

export interface Sample {
  key: number;
  label: number;
  /** The encoded image. */
  body: Buffer;
}

export class RecordDataset {
  /** Image record keys, in file order. */
  readonly imageKeys: number[];
  /** Identity ranges when the file has InsightFace's header, else null. */
  readonly identities: Identity[] | null;

  private constructor(
    readonly path: string,
    /** The `.idx` used, or null when the file was scanned. */
    readonly indexPath: string | null,
    private readonly reader: ReturnType<typeof native.RecordReader.open>,
  ) {
    const keys = reader.keys();
    const head = keys.includes(0) ? reader.read(0) : null;
    if (head !== null && head.flag === 2 && head.labels.length >= 2) {
      const [a, b] = head.labels;
      this.imageKeys = keys.filter((k) => k >= 1 && k < a);
      this.identities = keys
        .filter((k) => k >= a && k < b)
        .map((k, i) => {
          const r = reader.read(k);
          return { label: i, start: r.labels[0], end: r.labels[1] };
        });
    } else {
      this.imageKeys = keys;
      this.identities = null;
    }
  }

  /** Opens `X.rec` with `X.idx` beside it when there is one (else one scan of the file). */
  static open(rec: string, idx: string | null = rec.replace(/\.rec$/, '.idx')): RecordDataset {
    const useIdx = idx !== null && idx !== rec && fs.existsSync(idx) ? idx : null;
    return new RecordDataset(rec, useIdx, native.RecordReader.open(rec, useIdx));
  }

  get length(): number {
    return this.imageKeys.length;
  }

  /** Image `i` (0-based over the images) with its label. */
  sample(i: number): Sample {
    const key = this.imageKeys[i];
    if (key === undefined) throw new Error(`${this.path}: image ${i} is outside [0, ${this.length})`);
    const r = this.reader.read(key);
    return { key, label: r.flag > 0 ? r.labels[0] : r.label, body: r.body };
  }
}

/** Writes an InsightFace-layout dataset: samples grouped by label (ascending), record 0 with
 *  the image range, identity-range records after the images; `.rec` and `.idx` renamed into
 *  place when complete. */
export function writeRecordDataset(rec: string, samples: Iterable<{ label: number; body: Buffer }>, idx = rec.replace(/\.rec$/, '.idx')): void {
  const sorted = [...samples].sort((x, y) => x.label - y.label);
  const labels = [...new Set(sorted.map((s) => s.label))];
  const first = sorted.length + 1;
  const w = native.RecordWriterHandle.create(rec, idx);
  w.write(0, 0, 0, [first, first + labels.length], Buffer.alloc(0));
  sorted.forEach((s, i) => w.write(i + 1, s.label, i + 1, [], s.body));
  let at = 1;
  labels.forEach((label, i) => {
    const n = sorted.filter((s) => s.label === label).length;
    w.write(first + i, 0, 0, [at, at + n], Buffer.alloc(0));
    at += n;
  });
  w.finish();
}
