// The progress bar of the streaming data commands (`maskfr pack`, `maskfr mask`): on a
// terminal redrawn in place, else (when forced) a line every 10 s; images/s, ETA, bad count.

import { duration } from '../train/progress';

export type ProgressTick = (p: { total: number; done: number; bad: number }) => void;

/** Draws a command's progress on stderr, or undefined when there is no terminal and it is
 *  not `forced`. */
export function progressBar(command: string, forced: boolean): ProgressTick | undefined {
  const tty = process.stderr.isTTY === true;
  if (!tty && !forced) return undefined;
  const t0 = performance.now();
  let last = -Infinity;
  let ended = false; // the last line drawn once, whether a tick or the final call saw it first
  return ({ total, done, bad }) => {
    const now = performance.now();
    const end = total > 0 && done >= total;
    if (ended || (!tty && now - last < 10_000 && !end)) return;
    [last, ended] = [now, end];
    const secs = (now - t0) / 1000;
    const width = 24;
    const filled = total > 0 ? Math.round((width * done) / total) : 0;
    const line = total === 0 ? `${command}: scanning the input…` : `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(done).padStart(String(total).length)}/${total}  ${(done / secs).toFixed(0)} img/s  ETA ${duration(done > 0 ? ((total - done) * secs) / done : Infinity)}  bad ${bad}`;
    process.stderr.write(tty ? `\r${line}\x1b[K${end ? '\n' : ''}` : `${line}\n`);
  };
}
