// Run under `maskfr launch` by test/parallel.test.ts: a rank whose steps take STEP_MS each and
// which, as the trainer does, asks at each step's end whether any rank was interrupted. It
// writes $OUT/step-R when a step starts and $OUT/stopped-R when it stops at a step's end.

import fs from 'node:fs';
import path from 'node:path';
import { Communicator, worldFromEnv } from '../../ts';
import { Interrupts } from '../../ts/train/interrupts';

async function main(): Promise<void> {
  const comm = Communicator.connect(worldFromEnv(), { timeoutMs: 30_000 });
  const interrupts = new Interrupts((line) => console.error(`rank ${comm.rank}: ${line}`));
  const mark = (name: string, step: number) => fs.writeFileSync(path.join(process.env.OUT!, `${name}-${comm.rank}`), String(step));
  for (let step = 1; ; step++) {
    mark('step', step);
    await new Promise((r) => setTimeout(r, Number(process.env.STEP_MS)));
    if (interrupts.anyRank(comm)) {
      mark('stopped', step);
      process.exit(130);
    }
  }
}

void main();
