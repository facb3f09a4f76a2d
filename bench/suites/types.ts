import type { TorchReference } from '../reference';

export interface Result {
  suite: string;
  name: string;
  unit: string;
  ours: number;
  /** The same work by PyTorch in the same run; null when torch is not available. */
  reference: number | null;
  /** ours / reference for higher-is-better units. */
  ratio: number | null;
}

export type Suite = (torch: TorchReference | null) => Promise<Result[]>;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
