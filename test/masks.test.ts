import test from 'ava';
import { syntheticFace, synthesizeMask } from '../ts';

test('synthesizeMask: either synthesizer masks the lower face, the same seed the same mask', (t) => {
  const face = syntheticFace(1, 3, 0);
  for (const synthesizer of ['template', 'renderer'] as const) {
    const a = synthesizeMask(face, 112, 112, { synthesizer, seed: 5 });
    const changed = (rows: [number, number]) => {
      let n = 0;
      for (let i = rows[0] * 112 * 3; i < rows[1] * 112 * 3; i++) if (a[i] !== face[i]) n++;
      return n / ((rows[1] - rows[0]) * 112 * 3);
    };
    t.true(changed([75, 100]) > 0.3, `${synthesizer}: mouth region covered (${changed([75, 100]).toFixed(2)})`);
    t.true(changed([0, 30]) < 0.02, `${synthesizer}: forehead untouched`);
    t.deepEqual(synthesizeMask(face, 112, 112, { synthesizer, seed: 5 }), a);
    t.notDeepEqual(synthesizeMask(face, 112, 112, { synthesizer, seed: 6 }), a);
  }
  t.throws(() => synthesizeMask(face, 112, 112, { landmarks: [1, 2, 3] }), { message: /landmarks need 10 numbers/ });
});
