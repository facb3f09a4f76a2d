// The launcher as a terminal or a scheduler sees it, for test/parallel.test.ts: `maskfr launch`
// started as a shell starts a job (a process group of its own, which its ranks join), signals to
// that whole group (a terminal's Ctrl-C) or to the launcher alone (`kill PID`), and the group's
// live processes read from /proc (a killed launcher's ranks are orphans; zombies do not count).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const cli = path.join(__dirname, '..', '..', 'dist', 'cli', 'main.js');

export interface Job {
  /** The launcher's pid, which is also the job's process group. */
  pid: number;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Whether the launcher has exited. */
  ended(): boolean;
  /** stdout and stderr of the launcher and its ranks, so far. */
  output(): string;
  /** Signals every process of the job (the terminal's way), or the launcher alone. */
  signal(signal: NodeJS.Signals, to: 'group' | 'launcher'): void;
  /** The job's processes still running (not zombies), the launcher's included. */
  live(parent?: number): number[];
  /** SIGKILL to everything the job started: for teardown, so no rank outlives a failed test. */
  kill(): void;
}

export function startJob(args: string[], env: NodeJS.ProcessEnv = {}): Job {
  // Rank processes inherit node's arguments: tsx lets them run the .ts helpers.
  const p = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const pid = p.pid!;
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  let ended = false;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    p.on('exit', (code, signal) => {
      ended = true;
      resolve({ code, signal });
    }),
  );
  // The job's live processes; `parent` keeps only the children of that pid.
  const live = (parent?: number) =>
    fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).flatMap((d) => {
      try {
        // pid (comm) state ppid pgrp …: the command name may hold spaces and parentheses.
        const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        const [state, ppid, pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return state !== 'Z' && Number(pgrp) === pid && (parent === undefined || Number(ppid) === parent) ? [Number(d)] : [];
      } catch {
        return []; // gone while we looked
      }
    });
  return {
    pid,
    exit,
    ended: () => ended,
    output: () => out,
    signal: (signal, to) => process.kill(to === 'group' ? -pid : pid, signal),
    live,
    kill: () => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // nothing left in the group
      }
    },
  };
}

/** Polls `done` every 50 ms; false when `ms` passed first. */
export async function waitUntil(done: () => boolean, ms: number): Promise<boolean> {
  for (const start = Date.now(); !done(); await new Promise((r) => setTimeout(r, 50))) if (Date.now() - start > ms) return false;
  return true;
}
