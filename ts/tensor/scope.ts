// Deterministic lifetime: tensors made inside `tidy()` are disposed when it returns, except
// those it returns or `keep()`s. `noGrad()` turns tape recording off for its duration.

export interface Disposable {
  dispose(): void;
}

const scopes: Set<Disposable>[] = [];
let gradEnabled = true;

/** Called by every new tensor: it belongs to the innermost open scope, if any. */
export function track(t: Disposable): void {
  scopes.at(-1)?.add(t);
}

/** Takes `t` out of every open scope: it lives until disposed explicitly (or collected). */
export function keep<T extends Disposable>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collect(v: unknown, out: Set<unknown>): void {
  if (v === null || typeof v !== 'object' || out.has(v)) return;
  out.add(v);
  if (Array.isArray(v)) v.forEach((x) => collect(x, out));
  else if (Object.getPrototypeOf(v) === Object.prototype) Object.values(v).forEach((x) => collect(x, out));
}

/** Runs `fn`, then disposes every tensor made inside it that is not returned (in an array or
 *  plain object too) and not kept. Returned tensors move to the enclosing scope. When `fn`
 *  throws, everything it made is disposed before the error goes on (an out-of-memory step
 *  must not leave its activations behind for the garbage collector). */
export function tidy<R>(fn: () => R): R {
  if ((fn as unknown) instanceof Promise) throw new Error('tidy: fn must be synchronous');
  const scope = new Set<Disposable>();
  scopes.push(scope);
  let result: R;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  const survivors = new Set<unknown>();
  collect(result, survivors);
  for (const t of scope) {
    if (survivors.has(t)) track(t);
    else t.dispose();
  }
  return result;
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

function withGradMode<R>(on: boolean, fn: () => R): R {
  const before = gradEnabled;
  gradEnabled = on;
  try {
    return fn();
  } finally {
    gradEnabled = before;
  }
}

/** Runs `fn` without recording operations on the autograd tape. */
export function noGrad<R>(fn: () => R): R {
  return withGradMode(false, fn);
}

/** Runs `fn` recording again (an activation-checkpoint recompute inside a backward). */
export function enableGrad<R>(fn: () => R): R {
  return withGradMode(true, fn);
}
