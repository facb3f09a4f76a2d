// `maskfr synth`: writes the bundled synthetic-faces dataset.

import { SYNTH_DEFAULTS, writeSyntheticDataset } from '../data/synth-dataset';
import { parseArgs } from './args';

export function synth(argv: string[]): number {
  const p = parseArgs('synth', argv, ['identities', 'per-identity', 'held-out', 'pairs', 'seed', 'quality']);
  const [dir] = p.positional;
  if (dir === undefined) throw new Error('synth: usage: maskfr synth OUT_DIR [--identities N] [--per-identity K] [--held-out H] [--pairs P] [--seed S]');
  const num = (name: string, d: number) => {
    const v = Number(p.options.get(name) ?? d);
    if (!Number.isInteger(v) || v < 0) throw new Error(`synth: --${name} must be a non-negative integer, got ${p.options.get(name)}`);
    return v;
  };
  const d = SYNTH_DEFAULTS;
  const o = {
    identities: num('identities', d.identities),
    perIdentity: num('per-identity', d.perIdentity),
    heldOut: num('held-out', d.heldOut),
    pairs: num('pairs', d.pairs),
    seed: num('seed', d.seed),
    quality: num('quality', d.quality),
  };
  const t = performance.now();
  const out = writeSyntheticDataset(dir, o);
  console.log(`wrote ${out.rec} (${o.identities} identities × ${o.perIdentity} images) and ${out.bin} (${o.pairs} pairs of ${o.heldOut} held-out identities) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  return 0;
}
