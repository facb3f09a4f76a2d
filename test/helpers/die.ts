// Run by test/parallel.test.ts as separate rank processes: rank 1 dies (MODE=exit) or stalls
// (MODE=stall) while rank 0 waits on it in a collective; rank 0 must fail with a message
// naming rank 1 within the communicator's timeout.

import { Communicator, worldFromEnv } from '../../ts';

const comm = Communicator.connect(worldFromEnv(), { timeoutMs: Number(process.env.TIMEOUT_MS ?? 2000) });
if (comm.rank === 1) {
  if (process.env.MODE === 'exit') process.exit(3);
  setTimeout(() => comm.rank === 1 && process.exit(0), 60_000); // alive but silent (and holding comm)
} else {
  comm.barrier();
  console.log('barrier passed');
}
