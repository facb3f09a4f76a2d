// Seeds for native random ops. Native draws are a pure function of (seed, element index), so
// one global stream of seeds here makes a whole run reproducible from `manualSeed`.

import { native } from '../native';
import { Tensor, Shape } from './tensor';

/** mulberry32's output for state `s` (already advanced). */
function mulberryWord(s: number): number {
  let t = Math.imul(s ^ (s >>> 15), s | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

const advance = (s: number) => (s + 0x6d2b79f5) >>> 0;

/** A deterministic stream of 32-bit words (mulberry32). */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => mulberryWord((s = advance(s)));
}

/** A deterministic stream of uniforms in [0, 1). */
export function rng(seed: number): () => number {
  const words = mulberry32(seed);
  return () => words() / 4294967296;
}

// The global stream's state: a plain number, so it can be saved and replayed.
let state = 0x2545f491;

export function manualSeed(seed: number): void {
  state = seed >>> 0;
}

/** The next 32-bit seed of the global stream. */
export function nextSeed(): number {
  state = advance(state);
  return mulberryWord(state);
}

/** Runs `fn` with the global stream at `at` (a value of `randomState()`), then puts the
 *  stream back: a recompute draws the very seeds the first run drew. */
export function withRandomState<R>(at: number, fn: () => R): R {
  const now = state;
  state = at;
  try {
    return fn();
  } finally {
    state = now;
  }
}

export function randomState(): number {
  return state;
}

/** Normal values; `offset` starts at that element of the seed's stream (a shard of a larger
 *  tensor gets the same values as the whole would have). */
export function randn(shape: Shape, { mean = 0, std = 1, seed = nextSeed(), offset = 0, device = 'cpu' } = {}): Tensor {
  return new Tensor(native.NativeTensor.randn([...shape], mean, std, seed, offset, device));
}

export function randUniform(shape: Shape, { low = 0, high = 1, seed = nextSeed(), device = 'cpu' } = {}): Tensor {
  return new Tensor(native.NativeTensor.randUniform([...shape], low, high, seed, device));
}
