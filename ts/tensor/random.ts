// Seeds for native random ops. Native draws are a pure function of (seed, element index), so
// one global stream of seeds here makes a whole run reproducible from `manualSeed`.

import { native } from '../native';
import { Tensor, Shape } from './tensor';

let state = 0x2545f491;

export function manualSeed(seed: number): void {
  state = seed >>> 0;
}

/** The next 32-bit seed of the global stream (mulberry32). */
export function nextSeed(): number {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

export function randn(shape: Shape, { mean = 0, std = 1, seed = nextSeed(), device = 'cpu' } = {}): Tensor {
  return new Tensor(native.NativeTensor.randn([...shape], mean, std, seed, device));
}

export function randUniform(shape: Shape, { low = 0, high = 1, seed = nextSeed(), device = 'cpu' } = {}): Tensor {
  return new Tensor(native.NativeTensor.randUniform([...shape], low, high, seed, device));
}
