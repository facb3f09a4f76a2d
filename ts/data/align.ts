// Face alignment from five landmarks: insightface's `norm_crop` (the similarity fitted to
// ArcFace's template, OpenCV's bilinear warp with a zero border) in Rust, and the landmark
// files it reads: JSON, CSV, or the `name x1 y1 … x5 y5 score` lines insightface's detectors
// and IJB's `<set>_name_5pts_score.txt` hold.

import fs from 'node:fs';
import path from 'node:path';
import { native } from '../native';
import { writeFileAtomic } from '../io/atomic';

/** One face's five landmarks (x1, y1, …, x5, y5: left eye, right eye, nose tip, left and
 *  right mouth corners, in the image's left-to-right order) and where they were read. */
export interface FaceLandmarks {
  /** The image, as the file names it (a path relative to the input folder). */
  name: string;
  points: number[];
  /** `FILE line N` (or `FILE "name"` for JSON): for errors. */
  where: string;
}

export interface RgbImage {
  width: number;
  height: number;
  data: Buffer;
}

/** Which OpenCV's `warpAffine` a crop reproduces: `float` OpenCV 5.x's (what `pip install
 *  insightface` brings today: it depends on opencv-python, now 5.x), `fixed` OpenCV 4.x's
 *  fixed-point warp (the crops insightface's published models and figures were made with).
 *  Fixed is bit for bit; float all but 0.0004% of values (those off by one). The two differ
 *  by up to 5 levels on about 9% of the values. */
export type AlignWarp = 'float' | 'fixed';

/** The warp used when none is named. */
export const DEFAULT_ALIGN_WARP: AlignWarp = 'float';

/** The `size`×`size` ArcFace crop of an RGB image for its landmarks (`norm_crop`, to the bit
 *  of the OpenCV `warp` names); `size` a multiple of 112 or 128, as insightface allows. */
export function alignFace(img: RgbImage, points: number[], size = 112, what = 'align', warp: AlignWarp = DEFAULT_ALIGN_WARP): RgbImage {
  return { width: size, height: size, data: native.alignFace(img.data, img.width, img.height, points, size, what, warp) };
}

/** The similarity `[a, b, c, d, e, f]` (image → crop) that `alignFace` warps by. */
export function alignTransform(points: number[], size = 112, what = 'align'): number[] {
  return native.alignTransform(points, size, what);
}

/** Reads a landmarks file: `.json` (an object from image name to five [x, y] pairs or ten
 *  numbers), `.csv` (`name,x1,y1,…,x5,y5[,score]`, a header line allowed) or anything else
 *  as insightface's whitespace-separated `name x1 y1 … x5 y5 [score]`. Refuses, naming the
 *  file and line, a line without ten coordinates, one that is not a finite number, landmarks
 *  too degenerate to fit, and an image listed twice. */
export function readLandmarks(file: string): FaceLandmarks[] {
  const text = fs.readFileSync(file, 'utf8');
  const out = path.extname(file).toLowerCase() === '.json' ? fromJson(file, text) : fromLines(file, text, path.extname(file).toLowerCase() === '.csv');
  const seen = new Map<string, string>();
  for (const f of out) {
    const before = seen.get(f.name);
    if (before !== undefined) throw new Error(`${f.where}: ${f.name} is listed twice (also at ${before})`);
    seen.set(f.name, f.where);
    alignTransform(f.points, 112, `${f.where} (${f.name})`);
  }
  if (out.length === 0) throw new Error(`${file}: no landmarks in it`);
  return out;
}

function fromJson(file: string, text: string): FaceLandmarks[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error(`${file}: expected an object from image names to their five [x, y] landmarks`);
  return Object.entries(doc).map(([name, v]) => {
    const where = `${file} "${name}"`;
    const pairs = Array.isArray(v) && v.length === 5 && v.every((p) => Array.isArray(p) && p.length === 2);
    const flat = pairs ? (v as unknown[][]).flat() : v;
    if (!Array.isArray(flat) || flat.length !== 10 || flat.some(Array.isArray)) throw new Error(`${where}: expected five [x, y] pairs or ten numbers`);
    return { name, points: flat.map((x, i) => coordinate(x, i, where)), where };
  });
}

function fromLines(file: string, text: string, csv: boolean): FaceLandmarks[] {
  const out: FaceLandmarks[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = csv ? line.split(',').map((f) => f.trim()) : line.split(/\s+/);
    const where = `${file} line ${i + 1}`;
    // A CSV header: its coordinate columns are names, not numbers.
    if (csv && out.length === 0 && fields.length > 1 && Number.isNaN(Number(fields[1]))) return;
    if (fields.length !== 11 && fields.length !== 12) throw new Error(`${where}: expected an image name and 10 coordinates (5 x,y points)${fields.length > 12 ? '' : ' and an optional score'}, got ${fields.length} fields`);
    out.push({ name: fields[0], points: fields.slice(1, 11).map((x, k) => coordinate(x, k, where)), where });
  });
  return out;
}

function coordinate(v: unknown, i: number, where: string): number {
  const x = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(x)) throw new Error(`${where}: ${i % 2 === 0 ? 'x' : 'y'}${(i >> 1) + 1} is ${JSON.stringify(v)}, not a finite number`);
  return x;
}

export interface AlignOptions {
  /** The crop's side (112 default). */
  size?: number;
  /** `png`, `jpg`, or (absent) each image's own format. */
  format?: 'png' | 'jpg';
  /** JPEG quality (95 default). */
  quality?: number;
  /** Whose pixels the crops reproduce: OpenCV 5.x's (`float`, default) or 4.x's (`fixed`). */
  warp?: AlignWarp;
}

/** Aligns `input` (a folder, whose images the landmarks name by path relative to it, or one
 *  image, found in the file by its name) into `outDir`, keeping each relative path; each crop
 *  is written atomically. Every listed image is looked for before any is written. */
export function alignFiles(input: string, landmarksFile: string, outDir: string, opts: AlignOptions = {}): { written: string[] } {
  const size = opts.size ?? 112;
  const all = readLandmarks(landmarksFile);
  const folder = fs.statSync(input).isDirectory();
  const jobs = folder ? all.map((f) => ({ f, src: inside(input, f) })) : [{ f: single(input, all, landmarksFile), src: input }];
  for (const { f, src } of jobs) if (!fs.existsSync(src)) throw new Error(`${f.where}: ${src} does not exist`);
  // Every output name is known, and distinct, before anything is written: `a.jpg` and
  // `a.png` (or `./a.jpg` and `a.jpg`) would otherwise land on one crop, the second silently.
  const planned = jobs.map(({ f, src }) => {
    const own = /\.jpe?g$/i.test(src) ? 'jpg' : 'png';
    const format = opts.format ?? own;
    const base = path.basename(f.name).replace(/\.[^.]*$/, '');
    return { f, src, format, dest: path.resolve(outDir, folder ? path.dirname(path.normalize(f.name)) : '.', `${base}.${format}`) };
  });
  const claimed = new Map<string, string>();
  for (const { f, dest } of planned) {
    const first = claimed.get(dest);
    if (first !== undefined) throw new Error(`${f.where}: ${f.name} would be written to ${dest}, as ${first} is: rename one of them`);
    claimed.set(dest, f.name);
  }
  const written: string[] = [];
  for (const { f, src, format, dest } of planned) {
    const what = `${src} (landmarks at ${f.where})`;
    const crop = alignFace(native.decodeImage(fs.readFileSync(src), src), f.points, size, what, opts.warp);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    const bytes = format === 'jpg' ? native.encodeJpeg(crop.data, size, size, opts.quality ?? 95) : native.encodePng(crop.data, size, size);
    writeFileAtomic(dest, [bytes]);
    written.push(dest);
  }
  return { written };
}

/** `name`'s file inside `dir`; names that leave it (absolute, `..`) are refused. */
function inside(dir: string, f: FaceLandmarks): string {
  const rel = path.normalize(f.name);
  if (path.isAbsolute(rel) || rel.split(path.sep).includes('..')) throw new Error(`${f.where}: ${f.name} leaves the input folder`);
  return path.join(dir, rel);
}

/** The landmarks of one image: the entry naming it (by path or file name), or the file's
 *  only entry. */
function single(image: string, all: FaceLandmarks[], file: string): FaceLandmarks {
  const hit = all.find((f) => f.name === image || f.name === path.basename(image)) ?? (all.length === 1 ? all[0] : undefined);
  if (hit === undefined) throw new Error(`${file}: no landmarks for ${path.basename(image)} (${all.length} images listed)`);
  return hit;
}
