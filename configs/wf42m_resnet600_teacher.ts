// The seed's teacher: ResNet600 with CosFace on mask-augmented WebFace42M, data-parallel
// over 8 ranks (`maskfr launch --nproc-per-node 8 -- train --config configs/wf42m_resnet600_teacher.ts`)
// with the classifier sharded and 20% of negative classes sampled, as arcface_torch's
// WebFace42M partial-FC recipes.
import type { TrainConfig } from '../ts';

export default {
  network: 'resnet600',
  data: '/train_tmp/WebFace42M/train.rec',
  output: 'runs/wf42m_resnet600',
  numClasses: 2059906,
  margin: 'cosface',
  sampleRate: 0.2,
  batchSize: 128, // per rank: a global batch of 1,024 on 8 ranks
  lr: 0.1, // for that global batch
  momentum: 0.9,
  weightDecay: 5e-4,
  epochs: 20,
  clipGradNorm: 5,
  maskProbability: 0.35,
  verification: ['/train_tmp/WebFace42M/lfw.bin', '/train_tmp/WebFace42M/cfp_fp.bin', '/train_tmp/WebFace42M/agedb_30.bin'],
  verifyEvery: 10000,
  checkpointEvery: 10000,
} satisfies TrainConfig;
