// Just enough of ava's API to run our GPU-touching ava tests on the lent GPU machine, which
// has Node (carried) but no node_modules: bench/gpu/prepare.sh bundles the test files with
// esbuild, aliasing 'ava' to this file. The tests themselves are the ones `npm test` runs.

import { isDeepStrictEqual } from 'node:util';

type Body = (t: ExecutionContext) => void | Promise<void>;
const queue: { title: string; body: Body; skip: boolean }[] = [];

export class ExecutionContext {
  readonly failures: string[] = [];
  constructor(readonly title: string) {}
  private check(ok: boolean, what: string): void {
    if (!ok) this.failures.push(what);
  }
  is(a: unknown, b: unknown, msg = ''): void {
    this.check(Object.is(a, b), `${msg} ${String(a)} is not ${String(b)}`);
  }
  true(v: unknown, msg = ''): void {
    this.check(v === true, `${msg} expected true`);
  }
  false(v: unknown, msg = ''): void {
    this.check(v === false, `${msg} expected false`);
  }
  deepEqual(a: unknown, b: unknown, msg = ''): void {
    this.check(isDeepStrictEqual(a, b), `${msg} values differ`);
  }
  regex(s: string, re: RegExp, msg = ''): void {
    this.check(re.test(s), `${msg} '${s.slice(0, 200)}' does not match ${re}`);
  }
  throws(fn: () => unknown, expect?: { message?: RegExp }): Error | undefined {
    try {
      fn();
    } catch (e) {
      const err = e as Error;
      if (expect?.message) this.regex(err.message, expect.message, 'thrown message:');
      return err;
    }
    this.failures.push('expected a throw');
    return undefined;
  }
  fail(msg = ''): void {
    this.failures.push(msg || 'failed');
  }
  pass(): void {}
  log(...values: unknown[]): void {
    console.log(`    ${values.map(String).join(' ')}`);
  }
}

function test(title: string, body: Body): void {
  queue.push({ title, body, skip: false });
}
test.skip = (title: string, body: Body): void => {
  queue.push({ title, body, skip: true });
};
test.serial = test;

// Runs once every bundled test file has registered its tests.
setImmediate(async () => {
  let failed = 0;
  for (const { title, body, skip } of queue) {
    if (skip) {
      console.log(`  - [skip] ${title}`);
      continue;
    }
    const t = new ExecutionContext(title);
    try {
      await body(t);
    } catch (e) {
      t.failures.push(`threw: ${(e as Error).stack ?? e}`);
    }
    failed += t.failures.length > 0 ? 1 : 0;
    console.log(`  ${t.failures.length === 0 ? '✔' : '✘'} ${title}${t.failures.map((f) => `\n      ${f}`).join('')}`);
  }
  console.log(`${queue.length - failed} of ${queue.length} passed or skipped, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
});

export default test;
