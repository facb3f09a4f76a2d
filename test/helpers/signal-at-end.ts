// Run by test/stop.test.ts: trains the recipe $CONFIG and sends itself a SIGINT (as a terminal's
// Ctrl-C) during the final verification, after the last step; prints the result and exits as
// `maskfr train` does (0 done, 130 interrupted).

import { loadConfig } from '../../ts/train/config';
import { train } from '../../ts';

const cfg = loadConfig(process.env.CONFIG!, {});
void train(cfg, { quiet: true, onVerify: (step) => step === cfg.steps && process.kill(process.pid, 'SIGINT') }).then((r) => {
  console.log(JSON.stringify({ status: r.status, step: r.step, weights: r.weights }));
  process.exit(r.status === 'done' ? 0 : 130);
});
