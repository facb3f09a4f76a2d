// What a training run says while it runs: a progress line (loss, lr, images/s, ETA) redrawn
// in place on a terminal and printed as plain lines otherwise, and every figure appended as
// one JSON object per line to metrics.jsonl.

import fs from 'node:fs';

export type Metrics = Record<string, number | string | boolean | object>;

export function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(sec).padStart(2, '0')}s`;
}

export class Progress {
  private readonly t0 = performance.now();
  /** Time spent verifying and checkpointing, left out of the rates. */
  private asideMs = 0;
  private readonly tty: boolean;

  constructor(
    readonly total: number,
    /** The step the run started from (a resumed run), so rates count only this run. */
    readonly from: number,
    readonly imagesPerStep: number,
    private readonly out: NodeJS.WriteStream = process.stdout,
  ) {
    this.tty = out.isTTY === true;
  }

  /** Runs `f` off the clock (verification, checkpoints). */
  aside<T>(f: () => T): T {
    const t = performance.now();
    try {
      return f();
    } finally {
      this.asideMs += performance.now() - t;
    }
  }

  /** Training images per second and seconds of training left, from this run's steps so far. */
  rate(step: number): { imagesPerSecond: number; eta: number } {
    const secs = (performance.now() - this.t0 - this.asideMs) / 1000;
    const done = step - this.from;
    return { imagesPerSecond: (done * this.imagesPerStep) / secs, eta: ((this.total - step) * secs) / Math.max(1, done) };
  }

  update(step: number, fields: { loss: number; lr: number; [k: string]: number }): void {
    const { imagesPerSecond, eta } = this.rate(step);
    const width = 24;
    const filled = Math.round((width * step) / this.total);
    const extra = Object.entries(fields)
      .filter(([k]) => k !== 'loss' && k !== 'lr')
      .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(3)}`) // any whole value (counts, a loss scale, λ of 0 or 1) without decimals
      .join('  ');
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(step).padStart(String(this.total).length)}/${this.total}  loss ${fields.loss.toFixed(4)}  lr ${fields.lr.toFixed(5)}${extra ? `  ${extra}` : ''}  ${imagesPerSecond.toFixed(0)} img/s  ETA ${duration(eta)}`;
    this.out.write(this.tty ? `\r${line}\x1b[K` : `${line}\n`);
  }

  /** A line of its own (verification, checkpoints), not overwritten by the bar. */
  say(line: string): void {
    this.out.write(this.tty ? `\r\x1b[K${line}\n` : `${line}\n`);
  }

  done(): void {
    if (this.tty) this.out.write('\n');
  }
}

export class MetricsLog {
  constructor(readonly file: string) {}

  write(m: Metrics): void {
    fs.appendFileSync(this.file, `${JSON.stringify({ time: new Date().toISOString(), ...m })}\n`);
  }
}
