// Ctrl-C (SIGINT) and SIGTERM during a run: the first lets every rank finish its step, save a
// checkpoint and stop; a second exits at once, without waiting for the checkpoint.

import { Communicator } from '../parallel/comm';

export class Interrupts {
  private signals = 0;
  private readonly onSignal = () => {
    if (++this.signals > 1) process.exit(130);
    this.say('interrupted: finishing this step, then saving a checkpoint (Ctrl-C again to quit now)');
  };

  constructor(private readonly say: (line: string) => void) {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  /** Whether any rank was interrupted: every rank asks at every step, so all stop at the same one. */
  anyRank(comm: Communicator): boolean {
    const [stops] = comm.allReduceValues([this.signals > 0 ? 1 : 0], 'sum');
    return stops > 0;
  }

  close(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}
