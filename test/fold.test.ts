import test from 'ava';
import path from 'node:path';
import { createModel, foldBatchNorm, loadCheckpoint, noGrad, nn, randn, randUniform, tensor, tidy, Tensor, IBasicBlock, IResNet } from '../ts';
import { native } from '../ts/native';
import { assertClose } from './helpers/tensors';

/** Random BN affine parameters and running statistics everywhere (not identity ones). */
function randomiseBatchNorms(m: IResNet): void {
  const put = (t: Tensor, v: Tensor) => native.copyInto(t.handle('test'), v.handle('test'));
  tidy(() => {
    for (const [, mod] of m.namedModules()) {
      if (!(mod instanceof nn.BatchNorm)) continue;
      const c = mod.channels;
      put(mod.weight, randUniform([c], { low: 0.5, high: 1.5 }));
      put(mod.bias, randn([c], { std: 0.2 }));
      put(mod.runningMean, randn([c], { std: 0.2 }));
      put(mod.runningVar, randUniform([c], { low: 0.5, high: 1.5 }));
    }
  });
}

function checkFold(t: import('ava').ExecutionContext, model: IResNet): void {
  model.eval();
  const folded = foldBatchNorm(model);
  t.false(folded.namedModules().some(([, m]) => m instanceof nn.BatchNorm), 'no BatchNorm left');
  tidy(() =>
    noGrad(() => {
      const x = randn([3, 3, 112, 112]);
      assertClose(t, folded.forward(x), model.forward(x), 'folded vs unfolded embeddings');
    }),
  );
  folded.dispose();
}

test('folding the PyTorch fixture IResNet (random weights and statistics) keeps its embeddings', (t) => {
  for (const [name, file] of [['tiny', 'iresnet_tiny_second'], ['tiny-first', 'iresnet_tiny_first']]) {
    const m = createModel(name);
    loadCheckpoint(m, path.join(__dirname, 'fixtures', `${file}.safetensors`));
    checkFold(t, m);
    m.dispose();
  }
});

test('folding a deeper IResNet with random BN statistics keeps its embeddings', (t) => {
  const m = createModel('small');
  randomiseBatchNorms(m);
  checkFold(t, m);
  m.dispose();
});

test('folded models have fewer parameters and no per-block BN work', (t) => {
  const m = createModel('small');
  const f = foldBatchNorm(m.eval());
  const count = (x: { parameters(): Tensor[] }) => x.parameters().reduce((s, p) => s + p.numel, 0);
  t.true(count(f) < count(m), `${count(f)} vs ${count(m)}`);
  f.dispose();
  m.dispose();
});

test('a block whose input BN scales a channel by zero is refused by name', (t) => {
  const m = createModel('tiny');
  const bn1 = (m.stages[1].layers[0] as IBasicBlock).bn1;
  const w = bn1.weight.toFloat32Array();
  w[3] = 0;
  tidy(() => native.copyInto(bn1.weight.handle('t'), tensor(w, [bn1.channels]).handle('t')));
  t.throws(() => foldBatchNorm(m), { message: 'fold: layer2.0.bn1 scales channel 3 by 0; its padded conv cannot be folded exactly' });
  m.dispose();
});
