// Shared timing protocol of the suites (the torch server follows the same one): warm up,
// then time at least REPS calls and MIN_MS; alternate turns with a pause between them.

export const ROUNDS = 3;
export const REPS = 3;
export const WARM_MS = 30;
export const MIN_MS = 100;

/** The protocol's fields for a torch server request. */
export const TIMING = { reps: REPS, warm_ms: WARM_MS, min_ms: MIN_MS };

/** A pause between ours and torch's turns, so neither side's spinning threads (rayon's,
 *  OpenMP's) still hold a core when the other starts. */
export const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

/** Seconds per call of `once`, warm. */
export function time(once: () => void): number[] {
  for (const t0 = performance.now(); performance.now() - t0 < WARM_MS; ) once();
  const times: number[] = [];
  for (const t0 = performance.now(); times.length < REPS || performance.now() - t0 < MIN_MS; ) {
    const t = process.hrtime.bigint();
    once();
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  return times;
}
