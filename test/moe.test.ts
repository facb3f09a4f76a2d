import test from 'ava';
import { createMoE, noGrad, ops, randn, tidy, stateShapes } from '../ts';
import { assertClose } from './helpers/tensors';

test('the MoE routes each sample to the head its mask flag picks', (t) => {
  const m = createMoE('tiny').eval();
  tidy(() =>
    noGrad(() => {
      const x = randn([5, 3, 112, 112]);
      const flags = [true, false, false, true, false];
      const y = m.forwardRouted(x, flags);
      const h = m.trunk(x);
      const masked = m.masked.forward(h);
      const plain = m.head.forward(h);
      for (let i = 0; i < 5; i++) {
        const want = flags[i] ? masked : plain;
        assertClose(t, ops.indexRows(y, [i]), ops.indexRows(want, [i]), `row ${i}`);
      }
      assertClose(t, m.forwardRouted(x, [0, 0, 0, 0, 0]), plain, 'all unmasked');
    }),
  );
  m.dispose();
});

test('training the MoE sends gradients only to the heads that saw samples', (t) => {
  const m = createMoE('tiny');
  tidy(() => {
    ops.sum(ops.mul(m.forwardRouted(randn([4, 3, 112, 112]), [1, 1, 1, 1]), randn([4, 64]))).backward();
  });
  t.truthy(m.masked.fc.weight.grad, 'the masked head learns');
  t.is(m.head.fc.weight.grad, null, 'the unmasked head saw no sample');
  t.truthy(m.conv1.weight.grad, 'the shared trunk learns');
  t.true([...stateShapes(m).keys()].includes('masked.fc.weight'));
  t.throws(() => m.forwardRouted(randn([2, 3, 112, 112]), [true]), { message: 'IResNetMoE: 1 mask flags for a batch of 2' });
  m.dispose();
});
