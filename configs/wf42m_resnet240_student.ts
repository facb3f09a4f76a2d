// The seed's submission: ResNet240 trained with the convex CosFace + angular distillation
// objective from the ResNet600 teacher (configs/wf42m_resnet600_teacher.ts), on the same data.
// Teacher embeddings can be precomputed once instead (`maskfr embed`, then
// teacher: { embeddings: FILE }), which saves the teacher's forward on every batch.
import type { TrainConfig } from '../ts';
import teacher from './wf42m_resnet600_teacher';

export default {
  ...teacher,
  network: 'resnet240',
  output: 'runs/wf42m_resnet240_kd',
  teacher: { network: 'resnet600', weights: 'runs/wf42m_resnet600/model.safetensors' },
  // λ leans on the distillation term: CosFace's gradients (s = 64) dwarf the angular loss's.
  kd: { form: 'l2', lambda: { kind: 'constant', value: 0.9 } },
} satisfies TrainConfig;
