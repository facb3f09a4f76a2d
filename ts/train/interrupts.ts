// Ctrl-C (SIGINT) and SIGTERM during a run: the first lets every rank finish its step, save a
// checkpoint and stop; a second exits at once, without waiting for the checkpoint.
// Under `maskfr launch` the launcher counts the signals (one Ctrl-C can reach a rank twice:
// from the terminal and forwarded; see parallel/launch.ts): a rank takes any number as one
// stop, and the launcher kills the ranks on a second. A rank whose launcher is gone (killed,
// so it can count nothing) stops as on a signal: its parent is polled at every step, which
// needs no channel to keep open and is checked exactly where the ranks agree to stop.

import { Communicator } from '../parallel/comm';
import { launcherPid } from '../parallel/world';

export class Interrupts {
  private signals = 0;
  private orphaned = false;
  // The launcher's pid counts only while it is our parent: a script under the launcher may
  // start trainers of its own, which inherit the variable.
  private readonly launcher = ((p) => (p !== null && process.ppid === p ? p : null))(launcherPid());
  private readonly onSignal = () => {
    if (++this.signals === 1) this.say('interrupted: finishing this step, then saving a checkpoint (Ctrl-C again to quit now)');
    // Without a live launcher to count the signals, the second is ours to act on.
    else if (this.launcher === null || process.ppid !== this.launcher) process.exit(130);
  };

  constructor(private readonly say: (line: string) => void) {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  /** Whether any rank was interrupted: every rank asks at every step, so all stop at the same one. */
  anyRank(comm: Communicator): boolean {
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
