// Shared by the ava tests: PyTorch fixtures and closeness checks with stated tolerances.

import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { Tensor, tensor, readSafetensors, entryValues, StFile } from '../../ts';

let cached: StFile | null = null;

export function fixtures(): StFile {
  cached ??= readSafetensors(path.join(__dirname, '..', 'fixtures', 'ops.safetensors'));
  return cached;
}

export function has(name: string): boolean {
  return fixtures().tensors.has(name);
}

/** A fixture tensor as a maskfr Tensor (0-d fixtures become shape []). */
export function fx(name: string): Tensor {
  const e = fixtures().tensors.get(name);
  if (e === undefined) throw new Error(`fixture '${name}' is missing: run npm run fixtures`);
  return tensor(Float32Array.from(entryValues(e)), e.shape);
}

export function fxInt(name: string): Int32Array {
  const e = fixtures().tensors.get(name);
  if (e === undefined || e.dtype !== 'I32') throw new Error(`fixture '${name}' is missing or not I32`);
  return entryValues(e) as Int32Array;
}

/** Relative error `max|a − e| / max|e|`; Infinity when any value is NaN/inf or lengths differ. */
export function relErr(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let num = 0;
  let den = 1e-30;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!Number.isFinite(d)) return Infinity;
    num = Math.max(num, d);
    den = Math.max(den, Math.abs(expected[i]));
  }
  return num / den;
}

export function assertClose(t: ExecutionContext, actual: Tensor | null, expected: Tensor, what: string, tol = 1e-4): void {
  if (actual === null) {
    t.fail(`${what}: no tensor`);
    return;
  }
  t.deepEqual([...actual.shape], [...expected.shape], `${what}: shape`);
  const err = relErr(actual.toFloat32Array(), expected.toFloat32Array());
  t.true(err <= tol, `${what}: relative error ${err.toExponential(2)} > ${tol}`);
}

