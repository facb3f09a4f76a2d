// The demo's teacher on the bundled synthetic faces (`maskfr synthetic-faces data/synthetic` first):
// a small IResNet with CosFace on mask-augmented faces, a few minutes on 2 CPU cores.
import type { TrainConfig } from '../ts';

export default {
  network: 'small',
  data: 'data/synthetic/train.rec',
  output: 'runs/synthetic_small',
  margin: 'cosface',
  batchSize: 64,
  lr: 0.1,
  steps: 200,
  warmupSteps: 20,
  maskProbability: 0.35,
  verification: ['data/synthetic/verify.bin'],
  verifyEvery: 50,
  checkpointEvery: 50,
  logEvery: 25,
} satisfies TrainConfig;
