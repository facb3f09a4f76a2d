// Run under `maskfr launch` by test/parallel.test.ts: a rank whose steps take STEP_MS each and
// which, as the trainer does, asks at each step's end whether any rank was interrupted. It
// writes $OUT/step-R when a step starts and $OUT/stopped-R when it stops at a step's end
// (exiting 130, $STOP_CODE, or 7 on rank $FAIL_RANK).

import fs from 'node:fs';
import path from 'node:path';
import { Communicator, worldFromEnv } from '../../ts';
import { Interrupts } from '../../ts/train/interrupts';

async function main(): Promise<void> {
  const comm = Communicator.connect(worldFromEnv(), { timeoutMs: 30_000 });
  const interrupts = new Interrupts((line) => console.error(`rank ${comm.rank}: ${line}`));
  interrupts.stage = 'training';
  const mark = (name: string, step: number) => fs.writeFileSync(path.join(process.env.OUT!, `${name}-${comm.rank}`), String(step));
  for (let step = 1; ; step++) {
    mark('step', step);
    await new Promise((r) => setTimeout(r, Number(process.env.STEP_MS)));
    if (await interrupts.anyRank(comm)) {
      mark('stopped', step);
      // FAIL_RANK fails while stopping, as a rank whose checkpoint cannot be written does;
      // STOP_CODE 0: the ranks end as completed, as after a stop that came past the last step.
      process.exit(String(comm.rank) === process.env.FAIL_RANK ? 7 : Number(process.env.STOP_CODE ?? 130));
    }
  }
}

void main();
