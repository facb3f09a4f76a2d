// conv2d forward, backward-data and backward-weight GFLOP/s on IResNet-50's shapes at batch
// 16, ours vs PyTorch (oneDNN) with the same thread count, measured interleaved.

import { native } from '../../ts/native';
import { randn, Tensor } from '../../ts';
import type { TorchReference } from '../reference';
import { median, Result } from './types';
import { ROUNDS, settle, time, TIMING } from './timing';

interface ConvShape {
  name: string;
  x: [number, number, number, number];
  w: [number, number, number, number];
  stride: number;
  pad: number;
}

const N = 16;
const c3 = (cin: number, cout: number, hw: number, stride: number): ConvShape => ({
  name: `3x3${stride === 2 ? ' s2' : ''} ${cin}→${cout} @${hw}²`,
  x: [N, cin, hw, hw],
  w: [cout, cin, 3, 3],
  stride,
  pad: 1,
});
const c1 = (cin: number, cout: number, hw: number): ConvShape => ({
  name: `1x1 s2 ${cin}→${cout} @${hw}²`,
  x: [N, cin, hw, hw],
  w: [cout, cin, 1, 1],
  stride: 2,
  pad: 0,
});

/** IResNet-50's convolutions: the stride-1 3×3 of each stage, the stage-entry stride-2 3×3
 *  (arcface_torch's placement) and the 1×1 stride-2 shortcut. */
export const SHAPES: ConvShape[] = [
  c3(64, 64, 56, 1),
  c3(128, 128, 28, 1),
  c3(256, 256, 14, 1),
  c3(512, 512, 7, 1),
  c3(64, 64, 112, 2),
  c3(64, 128, 56, 2),
  c3(128, 256, 28, 2),
  c3(256, 512, 14, 2),
  c1(64, 64, 112),
  c1(64, 128, 56),
  c1(128, 256, 28),
  c1(256, 512, 14),
];

const DIRS = ['fwd', 'bwd_data', 'bwd_weight'] as const;

function flops(s: ConvShape): number {
  const oh = Math.floor((s.x[2] + 2 * s.pad - s.w[2]) / s.stride) + 1;
  const ow = Math.floor((s.x[3] + 2 * s.pad - s.w[3]) / s.stride) + 1;
  return 2 * s.x[0] * s.w[0] * s.w[1] * s.w[2] * s.w[3] * oh * ow;
}

function timeOurs(s: ConvShape, dir: (typeof DIRS)[number], x: Tensor, w: Tensor, gy: Tensor): number[] {
  const [st, pd] = [[s.stride, s.stride], [s.pad, s.pad]];
  return time(() => {
    const out =
      dir === 'fwd'
        ? native.conv2d(x.handle('bench'), w.handle('bench'), null, st, pd)
        : dir === 'bwd_data'
          ? native.conv2dBackwardInput(gy.handle('bench'), w.handle('bench'), s.x, st, pd)
          : native.conv2dBackwardWeight(gy.handle('bench'), x.handle('bench'), s.w, st, pd);
    out.dispose();
  });
}

export async function convSuite(torch: TorchReference | null): Promise<Result[]> {
  const results: Result[] = [];
  for (const s of SHAPES) {
    const x = randn(s.x);
    const w = randn(s.w, { std: 0.1 });
    const gy = new Tensor(native.conv2d(x.handle('bench'), w.handle('bench'), null, [s.stride, s.stride], [s.pad, s.pad]));
    for (const dir of DIRS) {
      const ours: number[] = [];
      const ref: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        await settle();
        ours.push(...timeOurs(s, dir, x, w, gy));
        await settle();
        if (torch) ref.push(...(await torch.ask<{ seconds: number[] }>({ op: 'conv', dir, x: s.x, w: s.w, stride: s.stride, pad: s.pad, ...TIMING })).seconds);
      }
      const gf = flops(s) / 1e9;
      const oursRate = gf / median(ours);
      const refRate = torch ? gf / median(ref) : null;
      results.push({ suite: 'conv', name: `${dir.padEnd(10)} ${s.name}`, unit: 'GFLOP/s', ours: oursRate, reference: refRate, ratio: refRate ? oursRate / refRate : null });
    }
    [x, w, gy].forEach((t) => t.dispose());
  }
  return results;
}
