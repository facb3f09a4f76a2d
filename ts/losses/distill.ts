// Angle-based feature distillation (VarGFaceNet / ShrinkTeaNet) and the student's convex
// objective `(1 − λ(t))·L_cosface + λ(t)·L_kd` with a schedule for λ. Composite ops only:
// the tape differentiates them.

import { Tensor, ones } from '../tensor/tensor';
import * as ops from '../tensor/ops';

/** `l2`: ‖ŝ − t̂‖² = 2(1 − cos); `one-minus-cos`: 1 − cos; `squared`: (1 − cos)². Each the
 *  mean over the batch, on L2-normalised embeddings. */
export type KdForm = 'l2' | 'one-minus-cos' | 'squared';

/** Distillation loss of student embeddings `[B, D]` towards (constant) teacher ones. */
export function angleDistillation(student: Tensor, teacher: Tensor, form: KdForm = 'l2'): Tensor {
  if (student.shape.join() !== teacher.shape.join()) {
    throw new Error(`angleDistillation: student [${student.shape.join(', ')}] and teacher [${teacher.shape.join(', ')}] differ`);
  }
  const [b, d] = student.shape;
  const diff = ops.add(ops.l2Normalize(student), ops.scale(ops.l2Normalize(teacher), -1));
  if (form === 'l2') return ops.scale(ops.sum(ops.mul(diff, diff)), 1 / b);
  if (form === 'one-minus-cos') return ops.scale(ops.sum(ops.mul(diff, diff)), 0.5 / b);
  // Per-row ‖ŝ − t̂‖²/2 = 1 − cos, then the mean of its square.
  const oneMinusCos = ops.scale(ops.matmul(ops.mul(diff, diff), ones([1, d], student.device), { transB: true }), 0.5);
  return ops.scale(ops.sum(ops.mul(oneMinusCos, oneMinusCos)), 1 / b);
}

export type LambdaSchedule =
  | { kind: 'constant'; value: number }
  | { kind: 'linear'; from: number; to: number; steps: number }
  | { kind: 'cosine'; from: number; to: number; steps: number }
  | { kind: 'step'; values: readonly number[]; milestones: readonly number[] };

/** λ at (0-based) iteration `step`, always within [0, 1]. */
export function kdLambda(s: LambdaSchedule, step: number): number {
  const clamp = (v: number) => Math.min(1, Math.max(0, v));
  const progress = (steps: number) => Math.min(1, step / Math.max(1, steps));
  switch (s.kind) {
    case 'constant':
      return clamp(s.value);
    case 'linear':
      return clamp(s.from + (s.to - s.from) * progress(s.steps));
    case 'cosine':
      return clamp(s.to + ((s.from - s.to) * (1 + Math.cos(Math.PI * progress(s.steps)))) / 2);
    case 'step': {
      if (s.values.length !== s.milestones.length + 1) {
        throw new Error(`kdLambda: a step schedule needs one more value than milestones, got ${s.values.length} and ${s.milestones.length}`);
      }
      return clamp(s.values[s.milestones.filter((m) => step >= m).length]);
    }
  }
}

/** The student's objective `(1 − λ)·margin loss + λ·distillation loss`. */
export function convexObjective(marginLoss: Tensor, kdLoss: Tensor, lambda: number): Tensor {
  return ops.add(ops.scale(marginLoss, 1 - lambda), ops.scale(kdLoss, lambda));
}
