// Where this process sits among the ranks, read from the environment `maskfr launch` sets
// (torchrun's variable names, so the habits carry over). Absent: a single process.

export interface World {
  rank: number;
  world: number;
  localRank: number;
  /** Rank 0's rendezvous address. */
  masterAddr: string;
  masterPort: number;
}

function intVar(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`environment: ${name}=${v} is not a non-negative integer`);
  return n;
}

export function worldFromEnv(env: NodeJS.ProcessEnv = process.env): World {
  const w: World = {
    rank: intVar(env, 'RANK', 0),
    world: intVar(env, 'WORLD_SIZE', 1),
    localRank: intVar(env, 'LOCAL_RANK', 0),
    masterAddr: env.MASTER_ADDR ?? '127.0.0.1',
    masterPort: intVar(env, 'MASTER_PORT', 29500),
  };
  if (w.world < 1 || w.rank >= w.world) throw new Error(`environment: RANK=${w.rank} with WORLD_SIZE=${w.world}: need RANK < WORLD_SIZE`);
  return w;
}

/** Set by `maskfr launch` in each rank's environment: its own pid. */
export const LAUNCHER_PID = 'MASKFR_LAUNCHER_PID';

/** The pid of the `maskfr launch` that started this process, or null when no launcher did. */
export function launcherPid(env: NodeJS.ProcessEnv = process.env): number | null {
  const v = env[LAUNCHER_PID];
  return v === undefined || v === '' ? null : intVar(env, LAUNCHER_PID, 0);
}
