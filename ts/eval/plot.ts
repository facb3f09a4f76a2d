// ROC plots (TAR against log FMR) from one layout, drawn two ways: SVG for the HTML report
// and an RGB raster (encoded to PNG natively) with a tiny built-in bitmap font, so a report
// needs no plotting library.

import { native } from '../native';

export interface Curve {
  name: string;
  /** `#rrggbb` */
  color: string;
  points: [number, number][];
  /** Operating points to mark on the curve, `[fmr, tar]`. */
  marks?: [number, number][];
}

const W = 640;
const H = 440;
const M = { left: 60, right: 20, top: 20, bottom: 50 };
const LO = -6; // 1e-6 … 1 on the x axis

const x = (fmr: number) => M.left + ((Math.log10(Math.max(fmr, 10 ** LO)) - LO) / -LO) * (W - M.left - M.right);
const y = (tar: number) => H - M.bottom - tar * (H - M.top - M.bottom);
const xTicks = Array.from({ length: -LO + 1 }, (_, i) => LO + i);
const yTicks = [0, 0.2, 0.4, 0.6, 0.8, 1];
const xLabel = (e: number) => (e === 0 ? '1' : `1e${e}`);
const visible = (c: Curve) => c.points.filter(([f]) => f >= 10 ** LO);

export function rocSvg(curves: Curve[]): string {
  const grid = [
    ...xTicks.map((e) => `<line x1="${x(10 ** e)}" y1="${y(0)}" x2="${x(10 ** e)}" y2="${y(1)}" stroke="#ddd"/><text x="${x(10 ** e)}" y="${y(0) + 18}" text-anchor="middle">${xLabel(e)}</text>`),
    ...yTicks.map((t) => `<line x1="${x(10 ** LO)}" y1="${y(t)}" x2="${x(1)}" y2="${y(t)}" stroke="#ddd"/><text x="${x(10 ** LO) - 8}" y="${y(t) + 4}" text-anchor="end">${t}</text>`),
  ];
  const lines = curves.map((c) => `<polyline fill="none" stroke="${c.color}" stroke-width="2" points="${visible(c).map(([f, t]) => `${x(f).toFixed(1)},${y(t).toFixed(1)}`).join(' ')}"/>`);
  const marks = curves.flatMap((c) => (c.marks ?? []).map(([f, t]) => `<circle cx="${x(f).toFixed(1)}" cy="${y(t).toFixed(1)}" r="5" fill="none" stroke="${c.color}" stroke-width="2"/>`));
  const legend = curves.map((c, i) => `<rect x="${W - 150}" y="${y(0.3) + 18 * i}" width="14" height="4" fill="${c.color}"/><text x="${W - 130}" y="${y(0.3) + 18 * i + 6}">${c.name}</text>`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    ...grid,
    `<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="none" stroke="#333"/>`,
    ...lines,
    ...marks,
    ...legend,
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 10}" text-anchor="middle">FMR</text>`,
    `<text x="16" y="${(M.top + H - M.bottom) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(M.top + H - M.bottom) / 2})">TAR</text>`,
    '</svg>',
  ].join('\n');
}

// 3×5 glyphs, rows top to bottom, 3 bits each (4 = left column).
const FONT: Record<string, number[]> = {
  '0': [7, 5, 5, 5, 7], '1': [2, 6, 2, 2, 7], '2': [7, 1, 7, 4, 7], '3': [7, 1, 7, 1, 7], '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7], '6': [7, 4, 7, 5, 7], '7': [7, 1, 1, 1, 1], '8': [7, 5, 7, 5, 7], '9': [7, 5, 7, 1, 7],
  '.': [0, 0, 0, 0, 2], '-': [0, 0, 7, 0, 0], e: [0, 7, 7, 4, 7], ' ': [0, 0, 0, 0, 0],
  A: [2, 5, 7, 5, 5], D: [6, 5, 5, 5, 6], F: [7, 4, 6, 4, 4], K: [5, 5, 6, 5, 5], M: [5, 7, 7, 5, 5], N: [5, 7, 7, 7, 5],
  O: [7, 5, 5, 5, 7], R: [6, 5, 6, 5, 5], S: [7, 4, 7, 1, 7], T: [7, 2, 2, 2, 2], U: [5, 5, 5, 5, 7],
};

class Raster {
  readonly px = new Uint8Array(W * H * 3).fill(255);

  dot(px: number, py: number, rgb: number[]): void {
    const [i, j] = [Math.round(px), Math.round(py)];
    if (i < 0 || j < 0 || i >= W || j >= H) return;
    this.px.set(rgb, (j * W + i) * 3);
  }

  line(x0: number, y0: number, x1: number, y1: number, rgb: number[], width = 1): void {
    const n = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
    for (let k = 0; k <= n; k++) {
      const [px, py] = [x0 + ((x1 - x0) * k) / n, y0 + ((y1 - y0) * k) / n];
      for (let d = 0; d < width; d++) this.dot(px, py + d - (width >> 1), rgb);
    }
  }

  /** Text at scale 2 (6×10 glyphs), anchored at its centre when `center`. */
  text(s: string, px: number, py: number, center = false): void {
    const start = center ? px - s.length * 4 : px;
    [...s].forEach((ch, k) =>
      (FONT[ch] ?? FONT[' ']).forEach((row, r) => {
        for (let c = 0; c < 3; c++) {
          if (row & (4 >> c)) for (const [a, b] of [[0, 0], [1, 0], [0, 1], [1, 1]]) this.dot(start + k * 8 + 2 * c + a, py - 5 + 2 * r + b, [40, 40, 40]);
        }
      }),
    );
  }
}

const rgb = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

/** The same plot as `rocSvg`, as PNG bytes. */
export function rocPng(curves: Curve[]): Buffer {
  const r = new Raster();
  for (const e of xTicks) {
    r.line(x(10 ** e), y(0), x(10 ** e), y(1), [221, 221, 221]);
    r.text(xLabel(e), x(10 ** e), y(0) + 16, true);
  }
  for (const t of yTicks) {
    r.line(x(10 ** LO), y(t), x(1), y(t), [221, 221, 221]);
    r.text(String(t), x(10 ** LO) - 8 - String(t).length * 8, y(t));
  }
  const [l, t, rr, b] = [x(10 ** LO), y(1), x(1), y(0)];
  for (const [a, c, d, e] of [[l, t, rr, t], [l, b, rr, b], [l, t, l, b], [rr, t, rr, b]]) r.line(a, c, d, e, [51, 51, 51]);
  curves.forEach((c, i) => {
    const pts = visible(c);
    for (let k = 1; k < pts.length; k++) r.line(x(pts[k - 1][0]), y(pts[k - 1][1]), x(pts[k][0]), y(pts[k][1]), rgb(c.color), 2);
    // A hollow square around each marked point.
    for (const [f, t] of c.marks ?? []) for (const [a, b, d, e] of [[-5, -5, 5, -5], [-5, 5, 5, 5], [-5, -5, -5, 5], [5, -5, 5, 5]]) r.line(x(f) + a, y(t) + b, x(f) + d, y(t) + e, rgb(c.color), 2);
    r.line(W - 150, y(0.3) + 18 * i + 2, W - 136, y(0.3) + 18 * i + 2, rgb(c.color), 4);
    r.text(c.name.toUpperCase(), W - 130, y(0.3) + 18 * i + 3);
  });
  r.text('FMR', (M.left + W - M.right) / 2, H - 12, true);
  r.text('TAR', 6, M.top + 6);
  return native.encodePng(Buffer.from(r.px.buffer), W, H);
}
