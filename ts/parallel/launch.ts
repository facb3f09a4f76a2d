// `maskfr launch`: torchrun for maskfr. Spawns this node's ranks with the rendezvous in
// their environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), splits the
// cores between them, and watches them: when one fails, the others are stopped (SIGTERM,
// then SIGKILL after a grace period) and the launcher exits with its code and a message
// naming it.
//
// Stopping. One Ctrl-C or SIGTERM is one stop: every rank finishes its step, saves a
// checkpoint and exits 130 (0 when the ranks had completed the run: they write its final
// checkpoint and weights first); a second one kills the ranks at once. A rank that fails while
// stopping is still a failure: its code, named. A stop can reach a rank
// twice: from a terminal, Ctrl-C goes to the whole process group, ranks included, and the
// launcher forwards it too; a scheduler may signal every process of the job. So under the
// launcher a rank counts any number of signals as one stop (train/interrupts.ts), and the
// second stop is the launcher's to count and enforce. (Ranks in a process group of their own
// would not mend the scheduler case, and would lose the terminal's Ctrl-Z and hang-up.)
// A rank whose launcher dies (kill -9) stops too, by the same path: it sees its parent change.

import { ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import { LAUNCHER_PID } from './world';

export interface LaunchOptions {
  nprocPerNode: number;
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  /** 0: a free port (one node only). */
  masterPort?: number;
  /** What each rank runs: node arguments (a script and its arguments). */
  argv: string[];
  /** How long the other ranks get, after one failed, before SIGKILL. */
  graceMs?: number;
  log?: (line: string) => void;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function checkCount(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new Error(`launch: --${name} must be an integer ≥ ${min}, got ${v}`);
}

/** Runs the ranks of this node to the end; resolves to the exit code (0 when all succeed, 130
 *  when a stop ended them early, a failing rank's code). */
export async function launch(o: LaunchOptions): Promise<number> {
  const { nprocPerNode: n, nnodes = 1, nodeRank = 0, masterAddr = '127.0.0.1', graceMs = 10_000, log = console.error } = o;
  checkCount('nproc-per-node', n, 1);
  checkCount('nnodes', nnodes, 1);
  if (!(Number.isInteger(nodeRank) && nodeRank >= 0 && nodeRank < nnodes)) throw new Error(`launch: --node-rank ${nodeRank} must be in 0..${nnodes - 1}`);
  if (o.argv.length === 0) throw new Error('launch: nothing to run: give the command after --');
  let port = o.masterPort ?? 29500;
  if (port === 0) {
    if (nnodes > 1) throw new Error('launch: --master-port 0 (any free port) works on one node only; give every node the same port');
    port = await freePort();
  }
  const world = n * nnodes;
  const threads = process.env.RAYON_NUM_THREADS ?? String(Math.max(1, Math.floor(os.availableParallelism() / n)));
  const children: ChildProcess[] = [];
  let failure: { rank: number; code: number; why: string } | null = null;
  let interrupted = false;
  // Whether a rank stopped before completing (a stop that came after every rank's last step
  // ends the run as completed: 0).
  let stoppedEarly = false;

  const live = () => children.filter((c) => c.exitCode === null && c.signalCode === null);
  const stopAll = () => {
    for (const c of live()) c.kill('SIGTERM');
    setTimeout(() => live().forEach((c) => c.kill('SIGKILL')), graceMs).unref();
  };
  let stops = 0;
  const onInterrupt = () => {
    interrupted = true;
    // No deadline on the first: a step and a checkpoint take what they take.
    if (++stops === 1) {
      log('launch: stopping: each rank finishes its step and saves a checkpoint (Ctrl-C again to stop now)');
      live().forEach((c) => c.kill('SIGINT'));
    } else {
      log('launch: stopping the ranks now, without a checkpoint');
      live().forEach((c) => c.kill('SIGKILL'));
    }
  };
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onInterrupt);

  const exits = Array.from({ length: n }, (_, local) => {
    const rank = nodeRank * n + local;
    const env = {
      ...process.env,
      RANK: String(rank),
      WORLD_SIZE: String(world),
      LOCAL_RANK: String(local),
      LOCAL_WORLD_SIZE: String(n),
      MASTER_ADDR: masterAddr,
      MASTER_PORT: String(port),
      RAYON_NUM_THREADS: threads,
      [LAUNCHER_PID]: String(process.pid),
    };
    const child = spawn(process.execPath, [...process.execArgv, ...o.argv], { env, stdio: 'inherit' });
    children.push(child);
    return new Promise<void>((resolve) => {
      child.on('error', (e) => {
        failure ??= { rank, code: 1, why: `could not start: ${e.message}` };
        stopAll();
        resolve();
      });
      child.on('exit', (code, signal) => {
        // After a stop, a rank ends as stopped: 130, or by the signal the stop sent (before its
        // handler was set, or the second stop's SIGKILL); anything else is still a failure.
        const stopped = interrupted && (code === 130 || signal === 'SIGINT' || signal === 'SIGTERM' || (signal === 'SIGKILL' && stops > 1));
        if (stopped) stoppedEarly = true;
        else if ((code !== 0 || signal !== null) && failure === null) {
          failure = { rank, code: code ?? 1, why: signal !== null ? `was killed by ${signal}` : `exited with code ${code}` };
          log(`launch: rank ${rank} ${failure.why}${interrupted ? ' while stopping' : ''}; stopping the other ranks`);
          stopAll();
        }
        resolve();
      });
    });
  });
  await Promise.all(exits);
  process.off('SIGINT', onInterrupt);
  process.off('SIGTERM', onInterrupt);
  const f = failure as { rank: number; code: number; why: string } | null;
  if (f !== null) {
    log(`launch: failed: rank ${f.rank} ${f.why}`);
    return f.code === 0 ? 1 : f.code;
  }
  return stoppedEarly ? 130 : 0;
}
