// A toy image-classification set for the foundation demo: each class is a coloured grating
// of its own orientation; samples jitter phase, frequency, contrast and add noise. (The
// synthetic faces of the data issue replace it as the main job.)

import { nextSeed } from '../tensor/random';

export interface Batch {
  images: Float32Array; // [N, 3, S, S], roughly in [-1, 1]
  labels: Int32Array;
}

function mulberry(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function patternBatch(n: number, classes: number, size: number, seed = nextSeed()): Batch {
  const rnd = mulberry(seed);
  const images = new Float32Array(n * 3 * size * size);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(rnd() * classes);
    labels[i] = c;
    const angle = (Math.PI * c) / classes;
    const [dx, dy] = [Math.cos(angle), Math.sin(angle)];
    const freq = 0.5 + 0.15 * rnd();
    const phase = 2 * Math.PI * rnd();
    const contrast = 0.5 + 0.5 * rnd();
    const tint = [0.6 + 0.4 * Math.cos(c), 0.6 + 0.4 * Math.sin(2 * c), 0.6 + 0.4 * Math.cos(3 * c)];
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const v = contrast * Math.sin(freq * (x * dx + y * dy) + phase);
        for (let ch = 0; ch < 3; ch++) {
          images[((i * 3 + ch) * size + y) * size + x] = tint[ch] * v + 0.3 * (rnd() - 0.5);
        }
      }
    }
  }
  return { images, labels };
}
