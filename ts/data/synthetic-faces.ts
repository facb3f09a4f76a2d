// Synthetic faces: the embedded default data (no downloads). Each identity has stable
// parameters (face outline, skin tone, eye / brow / nose / mouth geometry and colour, hair);
// each image varies pose, expression, lighting, background, glasses, blur and noise.
// Rendered aligned to the ArcFace 112×112 five-point template, with soft (anti-aliased) edges.

import { rng } from '../tensor/random';

/** ArcFace's 112×112 template: eyes, nose tip, mouth corners. */
export const ARCFACE_TEMPLATE: readonly (readonly [number, number])[] = [
  [38.2946, 51.6963],
  [73.5318, 51.5014],
  [56.0252, 71.7366],
  [41.5493, 92.3655],
  [70.7299, 92.2041],
];

export const SIZE = 112;

type RGB = [number, number, number];

const lerp = (a: number, b: number, t: number) => a + (b - a) * t;
const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);
/** Coverage of a pixel by a shape from its signed distance (px): a 1.2 px soft edge. */
const cover = (d: number) => clamp01(0.5 - d / 1.2);

export interface IdentityParams {
  faceW: number;
  faceH: number;
  jaw: number; // superellipse exponent below the cheeks: lower is pointier
  skin: RGB;
  hair: RGB;
  hairline: number;
  hairSide: number;
  eyeDx: number;
  eyeDy: number;
  eyeW: number;
  eyeH: number;
  iris: RGB;
  browThick: number;
  browTilt: number;
  browGap: number;
  noseLen: number;
  noseW: number;
  mouthW: number;
  lipH: number;
  lip: RGB;
  mouthDy: number;
}

export function identity(seed: number): IdentityParams {
  const r = rng(seed * 2654435761);
  const tone = r();
  const skin: RGB = [lerp(0.36, 0.95, tone), lerp(0.22, 0.78, tone) * lerp(0.9, 1.05, r()), lerp(0.16, 0.68, tone) * lerp(0.85, 1.05, r())];
  const hairDark = r() ** 1.5;
  const hairHue = r();
  const hair: RGB = [lerp(0.75, 0.05, hairDark) * lerp(0.7, 1.1, hairHue), lerp(0.6, 0.04, hairDark) * lerp(0.7, 1, hairHue), lerp(0.4, 0.03, hairDark)];
  const irisKind = r();
  const iris: RGB = irisKind < 0.5 ? [0.3, 0.18, 0.08] : irisKind < 0.75 ? [0.2, 0.35, 0.55] : [0.25, 0.4, 0.2];
  return {
    faceW: lerp(33, 42, r()),
    faceH: lerp(44, 54, r()),
    jaw: lerp(1.6, 2.6, r()),
    skin,
    hair,
    hairline: lerp(18, 34, r()),
    hairSide: lerp(0, 1, r()),
    eyeDx: lerp(-2.5, 2.5, r()),
    eyeDy: lerp(-2.5, 2.5, r()),
    eyeW: lerp(6.5, 10, r()),
    eyeH: lerp(2.4, 4.2, r()),
    iris: iris.map((c) => c * lerp(0.8, 1.2, r())) as RGB,
    browThick: lerp(1.2, 3.2, r()),
    browTilt: lerp(-0.25, 0.25, r()),
    browGap: lerp(6, 10, r()),
    noseLen: lerp(10, 20, r()),
    noseW: lerp(5, 10, r()),
    mouthW: lerp(0.8, 1.15, r()),
    lipH: lerp(2, 4.5, r()),
    lip: [lerp(0.55, 0.8, r()), lerp(0.2, 0.4, r()), lerp(0.2, 0.35, r())],
    mouthDy: lerp(-2.5, 2.5, r()),
  };
}

export interface ImageParams {
  roll: number;
  yaw: number;
  scale: number;
  dx: number;
  dy: number;
  smile: number;
  open: number;
  browRaise: number;
  light: number;
  lightDir: number;
  brightness: number;
  bg: [RGB, RGB];
  glasses: boolean;
  blur: number;
  noise: number;
}

export function variation(seed: number): ImageParams {
  const r = rng(seed ^ 0x9e3779b9);
  const color = (): RGB => [r(), r(), r()];
  return {
    roll: lerp(-0.16, 0.16, r()),
    yaw: lerp(-0.35, 0.35, r()),
    scale: lerp(0.92, 1.08, r()),
    dx: lerp(-3, 3, r()),
    dy: lerp(-3, 3, r()),
    smile: lerp(-0.5, 1, r()),
    open: r() < 0.3 ? lerp(0, 4, r()) : 0,
    browRaise: lerp(-1.5, 2.5, r()),
    light: lerp(0, 0.45, r()),
    lightDir: lerp(0, 2 * Math.PI, r()),
    brightness: lerp(0.75, 1.2, r()),
    bg: [color(), color()],
    glasses: r() < 0.15,
    blur: r() < 0.5 ? 0 : lerp(0.3, 1.3, r()),
    noise: lerp(0, 0.05, r()),
  };
}

/** Renders one face as RGB bytes (HWC, 112×112). */
export function renderFace(id: IdentityParams, v: ImageParams, noiseSeed: number): Uint8Array {
  const img = new Float32Array(SIZE * SIZE * 3);
  const [cos, sin] = [Math.cos(v.roll), Math.sin(v.roll)];
  const cx = 56 + v.dx;
  const cy = 64 + v.dy;
  const T = ARCFACE_TEMPLATE;
  const shiftX = v.yaw * 9; // features slide toward the turned side, the outline less
  const brow = id.hair.map((h) => h * 0.8) as RGB;
  const eyes = [0, 1].map((side) => ({
    x: T[side][0] + (side ? 1 : -1) * id.eyeDx + shiftX,
    y: T[side][1] + id.eyeDy,
    tilt: id.browTilt * (side ? -1 : 1),
  }));
  const nx = T[2][0] + shiftX * 1.2;
  const ny = T[2][1];
  const mx0 = lerp(T[3][0], 56, 1 - id.mouthW) + shiftX;
  const mx1 = lerp(T[4][0], 56, 1 - id.mouthW) + shiftX;
  const mcx = (mx0 + mx1) / 2;
  const half = (mx1 - mx0) / 2;
  const fringe = 64 - id.faceH + id.hairline;
  let r = 0;
  let g = 0;
  let b = 0;
  const over = (col: RGB, a: number, k = 1) => {
    if (a <= 0) return;
    r += (col[0] * k - r) * a;
    g += (col[1] * k - g) * a;
    b += (col[2] * k - b) * a;
  };
  for (let py = 0; py < SIZE; py++) {
    const t = py / SIZE;
    for (let px = 0; px < SIZE; px++) {
      // Into the face's frame: undo translation, roll and scale around the face centre.
      const ux = ((px - cx) * cos + (py - cy) * sin) / v.scale;
      const uy = (-(px - cx) * sin + (py - cy) * cos) / v.scale;
      const x = ux + 56;
      const y = uy + 64;
      r = lerp(v.bg[0][0], v.bg[1][0], t);
      g = lerp(v.bg[0][1], v.bg[1][1], t);
      b = lerp(v.bg[0][2], v.bg[1][2], t);
      // Head and hair: a larger ellipse behind the face.
      const hx = (ux - shiftX * 0.3) / (id.faceW + 6);
      const hy = (uy + 6) / (id.faceH + 8);
      if (y < fringe + 18 || Math.abs(ux) > id.faceW - 4 + 8 * id.hairSide) over(id.hair, cover((Math.hypot(hx, hy) - 1) * (id.faceW + 6)));
      // Face: superellipse, pointier below the cheekbones.
      const fx = Math.abs(ux - shiftX * 0.4) / id.faceW;
      const fy = Math.abs(uy) / id.faceH;
      const p = uy > 0 ? id.jaw : 2.2;
      const fd = (fx ** p + fy ** p) ** (1 / p) - 1;
      const inFace = cover(fd * id.faceW);
      if (inFace <= 0) {
        const o = (py * SIZE + px) * 3;
        img[o] = r * v.brightness;
        img[o + 1] = g * v.brightness;
        img[o + 2] = b * v.brightness;
        continue;
      }
      const shade = 1 + v.light * ((ux / 56) * Math.cos(v.lightDir) + (uy / 56) * Math.sin(v.lightDir)) - 0.25 * Math.max(0, fd + 0.25);
      over(id.skin, inFace, shade);
      // Hairline fringe over the forehead.
      if (y < fringe + 6) over(id.hair, cover(y - (fringe + 4 * Math.sin(ux / 9 + id.hairSide * 6))) * inFace);
      // Eyes: sclera, iris, pupil; brows above them; glasses sometimes.
      for (const e of eyes) {
        if (Math.abs(y - e.y) > 22 || Math.abs(x - e.x) > id.eyeW + 8) continue;
        const ed = Math.hypot((x - e.x) / id.eyeW, (y - e.y) / id.eyeH) - 1;
        const inEye = cover(ed * id.eyeH);
        if (inEye > 0) {
          over(SCLERA, inEye);
          const ir = id.eyeH * 0.85;
          const di = Math.hypot(x - e.x - shiftX * 0.2, y - e.y);
          over(id.iris, cover(di - ir) * inEye);
          over(PUPIL, cover(di - ir * 0.45) * inEye);
        }
        const by = e.y - id.browGap - v.browRaise + (x - e.x) * e.tilt + 0.02 * (x - e.x) ** 2;
        over(brow, cover(Math.abs(y - by) - id.browThick / 2) * cover(Math.abs(x - e.x) - id.eyeW * 1.3) * 0.9);
        if (v.glasses) over(FRAME, cover(Math.abs(Math.hypot((x - e.x) / (id.eyeW + 5), (y - e.y) / (id.eyeH + 5)) - 1) * (id.eyeH + 5) - 0.8));
      }
      // Nose: a shaded ridge and two nostrils around the template's nose tip.
      if (y > ny - id.noseLen - 2 && y < ny + 4) {
        if (y > ny - id.noseLen && y < ny) over(id.skin, cover(Math.abs(x - nx - (y - ny) * 0.08) - 1.2) * 0.6, shade * 0.82);
        for (const sgn of [-1, 1]) over(id.skin, cover(Math.hypot((x - nx - (sgn * id.noseW) / 2) / 1.8, (y - ny - 1) / 1.2) - 1) * 0.8, shade * 0.45);
      }
      // Mouth: lips between the template's corners, curved by the smile, dark when open.
      const u = (x - mcx) / half;
      if (Math.abs(u) < 1.3) {
        const my = T[3][1] + id.mouthDy - v.smile * 2.5 * (1 - u * u) + v.smile * 1.5;
        if (Math.abs(y - my) < id.lipH + v.open + 2) {
          over(id.lip, cover((Math.hypot(u, (y - my) / (id.lipH + v.open / 2)) - 1) * id.lipH), shade);
          if (v.open > 0.3) over(MOUTH, cover(Math.hypot(u * 1.25, (y - my) / (v.open / 2)) - 1));
        }
      }
      const o = (py * SIZE + px) * 3;
      img[o] = r * v.brightness;
      img[o + 1] = g * v.brightness;
      img[o + 2] = b * v.brightness;
    }
  }
  const out = v.blur > 0 ? blur(img, v.blur) : img;
  const rand = rng(noiseSeed);
  const bytes = new Uint8Array(out.length);
  for (let i = 0; i < out.length; i++) {
    const n = v.noise * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    bytes[i] = Math.round(255 * clamp01(out[i] + n));
  }
  return bytes;
}

const SCLERA: RGB = [0.93, 0.92, 0.9];
const PUPIL: RGB = [0.05, 0.05, 0.05];
const FRAME: RGB = [0.08, 0.08, 0.1];
const MOUTH: RGB = [0.12, 0.04, 0.05];

/** Separable Gaussian blur of an HWC float image. */
function blur(img: Float32Array, sigma: number): Float32Array {
  const rad = Math.ceil(2.5 * sigma);
  const k = Array.from({ length: 2 * rad + 1 }, (_, i) => Math.exp(-((i - rad) ** 2) / (2 * sigma * sigma)));
  const ks = k.reduce((a, b) => a + b, 0);
  const pass = (src: Float32Array, horizontal: boolean) => {
    const dst = new Float32Array(src.length);
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        for (let ch = 0; ch < 3; ch++) {
          let s = 0;
          for (let i = -rad; i <= rad; i++) {
            const xx = horizontal ? Math.min(SIZE - 1, Math.max(0, x + i)) : x;
            const yy = horizontal ? y : Math.min(SIZE - 1, Math.max(0, y + i));
            s += src[(yy * SIZE + xx) * 3 + ch] * k[i + rad];
          }
          dst[(y * SIZE + x) * 3 + ch] = s / ks;
        }
      }
    }
    return dst;
  };
  return pass(pass(img, true), false);
}

/** Image `index` of identity `person` in dataset `seed`: same inputs, same pixels. */
export function syntheticFace(seed: number, person: number, index: number): Uint8Array {
  const id = identity(seed * 1_000_003 + person);
  const imageSeed = (seed * 7919 + person * 104_729 + index * 1_299_709) >>> 0;
  return renderFace(id, variation(imageSeed), imageSeed + 1);
}
