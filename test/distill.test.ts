import test from 'ava';
import { convexObjective, kdLambda, tensor, tidy, angleDistillation, randn } from '../ts';

test('λ schedules: constant, linear ramp, cosine, step — always within [0, 1]', (t) => {
  t.is(kdLambda({ kind: 'constant', value: 0.3 }, 99), 0.3);
  const lin = { kind: 'linear', from: 0, to: 0.8, steps: 100 } as const;
  t.deepEqual([0, 50, 100, 200].map((s) => +kdLambda(lin, s).toFixed(6)), [0, 0.4, 0.8, 0.8]);
  const cos = { kind: 'cosine', from: 1, to: 0.2, steps: 10 } as const;
  t.deepEqual([0, 5, 10].map((s) => +kdLambda(cos, s).toFixed(6)), [1, 0.6, 0.2]);
  const step = { kind: 'step', values: [0.1, 0.5, 0.9], milestones: [10, 20] } as const;
  t.deepEqual([0, 9, 10, 19, 20, 99].map((s) => kdLambda(step, s)), [0.1, 0.1, 0.5, 0.5, 0.9, 0.9]);
  t.is(kdLambda({ kind: 'constant', value: 1.7 }, 0), 1);
  t.throws(() => kdLambda({ kind: 'step', values: [0.1], milestones: [3] }, 0), { message: /one more value than milestones/ });
});

test('the convex objective weighs the two losses by 1 − λ and λ; distillation is 0 for a copy of the teacher', (t) => {
  tidy(() => {
    t.is(+convexObjective(tensor([2], []), tensor([10], []), 0.25).item().toFixed(5), 4);
    const teacher = randn([4, 16]);
    t.true(Math.abs(angleDistillation(teacher, teacher).item()) < 1e-6);
    t.throws(() => angleDistillation(randn([4, 16]), randn([4, 8])), { message: /student \[4, 16\] and teacher \[4, 8\] differ/ });
  });
});
