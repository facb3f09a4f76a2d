// Seeds for native random ops. Native draws are a pure function of (seed, element index), so
// one global stream of seeds here makes a whole run reproducible from `manualSeed`.

import { native } from '../native';
import { Tensor, Shape } from './tensor';

/** A deterministic stream of 32-bit words (mulberry32). */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A deterministic stream of uniforms in [0, 1). */
export function rng(seed: number): () => number {
  const words = mulberry32(seed);
  return () => words() / 4294967296;
}

let stream = mulberry32(0x2545f491);

export function manualSeed(seed: number): void {
  stream = mulberry32(seed);
}

/** The next 32-bit seed of the global stream. */
export function nextSeed(): number {
  return stream();
}

/** Normal values; `offset` starts at that element of the seed's stream (a shard of a larger
 *  tensor gets the same values as the whole would have). */
export function randn(shape: Shape, { mean = 0, std = 1, seed = nextSeed(), offset = 0, device = 'cpu' } = {}): Tensor {
  return new Tensor(native.NativeTensor.randn([...shape], mean, std, seed, offset, device));
}

export function randUniform(shape: Shape, { low = 0, high = 1, seed = nextSeed(), device = 'cpu' } = {}): Tensor {
  return new Tensor(native.NativeTensor.randUniform([...shape], low, high, seed, device));
}
