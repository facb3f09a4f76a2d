// The PyTorch side of every benchmark: a long-lived `bench/torch/server.py` process asked
// for one measurement at a time, so ours and torch's alternate and never run together.

import { spawn, ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';

export class TorchReference {
  private constructor(
    private readonly proc: ChildProcessWithoutNullStreams,
    private readonly lines: AsyncIterator<string>,
    readonly version: string,
  ) {}

  /** Starts the server with `threads` intra-op threads; returns the reason when torch is absent. */
  static async start(threads: number): Promise<TorchReference | string> {
    const python = process.env.PYTHON ?? 'python3';
    const proc = spawn(python, [path.join(__dirname, 'torch', 'server.py'), String(threads)], { stdio: 'pipe' });
    const failed = new Promise<string>((resolve) => proc.on('error', (e) => resolve(`cannot run ${python}: ${e.message}`)));
    const lines = readline.createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
    const first = await Promise.race([lines.next().then((r) => (r.done ? null : r.value)), failed]);
    if (first === null) return `${python} bench/torch/server.py exited before answering`;
    let hello: { ready: boolean; reason?: string; torch?: string };
    try {
      hello = JSON.parse(first) as typeof hello;
    } catch {
      return first; // the spawn error message
    }
    if (!hello.ready) {
      proc.kill();
      return hello.reason ?? 'torch reference not ready';
    }
    return new TorchReference(proc, lines, hello.torch ?? 'unknown');
  }

  async ask<T>(req: object): Promise<T> {
    this.proc.stdin.write(`${JSON.stringify(req)}\n`);
    const r = await this.lines.next();
    if (r.done) throw new Error('the torch reference server exited');
    return JSON.parse(r.value) as T;
  }

  close(): void {
    this.proc.stdin.end();
  }
}
