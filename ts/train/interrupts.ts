// Ctrl-C (SIGINT) and SIGTERM during a run: the first lets every rank finish its step, save a
// checkpoint and stop; a second exits at once, without waiting for the checkpoint. Counted from
// the trainer's first line: a stop during start-up is taken before the first step (nothing to
// save yet); one after the last step lets the final checkpoint and weights be written.
// Under `maskfr launch` the launcher counts the signals (one Ctrl-C can reach a rank twice:
// from the terminal and forwarded; see parallel/launch.ts): a rank takes any number as one
// stop, and the launcher kills the ranks on a second. A rank whose launcher is gone (killed,
// so it can count nothing) stops as on a signal: its parent is polled at every step, which
// needs no channel to keep open and is checked exactly where the ranks agree to stop.

import { Communicator } from '../parallel/comm';
import { launcherPid } from '../parallel/world';

/** Where the run is: what the first signal will do differs. */
export type Stage = 'start-up' | 'training' | 'finishing';

const FIRST: Record<Stage, string> = {
  'start-up': 'interrupted: stopping before the first step (Ctrl-C again to quit now)',
  training: 'interrupted: finishing this step, then saving a checkpoint (Ctrl-C again to quit now)',
  finishing: 'interrupted: the last step is done; writing the final checkpoint and weights first (Ctrl-C again to quit now)',
};

export class Interrupts {
  stage: Stage = 'start-up';
  private signals = 0;
  private orphaned = false;
  // The launcher's pid counts only while it is our parent: a script under the launcher may
  // start trainers of its own, which inherit the variable.
  private readonly launcher = ((p) => (p !== null && process.ppid === p ? p : null))(launcherPid());
  private readonly onSignal = () => {
    if (++this.signals === 1) this.say(FIRST[this.stage]);
    // Without a live launcher to count the signals, the second is ours to act on.
    else if (this.launcher === null || process.ppid !== this.launcher) process.exit(130);
  };

  /** Where this rank's lines go (the trainer's progress line, once it exists). */
  constructor(public say: (line: string) => void) {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  /** Whether any rank was interrupted: every rank asks at every step (and once after start-up),
   *  so all stop at the same one. Async: a signal that arrived while start-up held the thread
   *  is handled only once the event loop turns. */
  async anyRank(comm: Communicator): Promise<boolean> {
    await new Promise(setImmediate);
    if (this.launcher !== null && !this.orphaned && process.ppid !== this.launcher) {
      this.orphaned = true;
      this.say(`the launcher (pid ${this.launcher}) is gone: finishing this step, then saving a checkpoint`);
    }
    const [stops] = comm.allReduceValues([this.signals > 0 || this.orphaned ? 1 : 0], 'sum');
    return stops > 0;
  }

  close(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}
