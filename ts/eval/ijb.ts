// IJB-B / IJB-C 1:1 template verification, as insightface's `eval_ijbc.py` computes it:
// each loose crop aligned by its five landmarks, embedded with its mirror (the two raw
// embeddings summed), optionally × its detector score; per template, the mean feature of each
// media summed over medias, L2-normalised; listed pairs scored by cosine; TAR at FAR 1e-6 …
// 1e-1 read off sklearn's ROC at the nearest kept FAR. Images stream through in batches and
// their features go to a cache file keyed by model, weights and set, so re-scoring (another
// protocol, with or without detector scores) never embeds again.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native } from '../native';
import { Module } from '../nn/module';
import { Tensor } from '../tensor/tensor';
import { noGrad, tidy } from '../tensor/scope';
import * as ops from '../tensor/ops';
import { NonFiniteTensor } from '../models/weights';
import { duration } from '../train/progress';
import { rocPng, rocSvg } from './plot';
import { AlignWarp, DEFAULT_ALIGN_WARP } from '../data/align';

export const IJB_SETS = ['IJBB', 'IJBC'] as const;
export type IjbSet = (typeof IJB_SETS)[number];
export const FAR_LEVELS = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1];
/** The plotted curve: 10 points a decade from 1e-7 to 1. */
const CURVE_FARS = Array.from({ length: 71 }, (_, i) => 10 ** (-7 + i / 10));

/** The meta files of a set, one entry per loose crop in the files' (shared) order. */
export interface IjbMeta {
  set: IjbSet;
  root: string;
  names: string[];
  /** Five `x, y` landmarks per image, `[n·10]`. */
  landmarks: Float64Array;
  /** The detector's score of each crop (float32, as `eval_ijbc.py` reads it). */
  faceness: Float32Array;
  templates: Int32Array;
  medias: Int32Array;
}

const metaFile = (root: string, set: IjbSet, what: string) => path.join(root, 'meta', `${set.toLowerCase()}_${what}.txt`);

function lines(file: string): string[][] {
  if (!fs.existsSync(file)) throw new Error(`ijb: ${file} is missing (an IJB root holds meta/ and loose_crop/)`);
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => l.split(/\s+/));
}

/** Reads `<set>_name_5pts_score.txt` and `<set>_face_tid_mid.txt`, refusing any line that is
 *  not what the format says or that names another image than its twin line. */
export function readIjbMeta(root: string, set: IjbSet): IjbMeta {
  const [lmkFile, tidFile] = [metaFile(root, set, 'name_5pts_score'), metaFile(root, set, 'face_tid_mid')];
  const [lmk, tid] = [lines(lmkFile), lines(tidFile)];
  if (lmk.length !== tid.length) throw new Error(`ijb: ${lmkFile} lists ${lmk.length} images and ${tidFile} ${tid.length}`);
  const n = lmk.length;
  const meta: IjbMeta = { set, root, names: [], landmarks: new Float64Array(10 * n), faceness: new Float32Array(n), templates: new Int32Array(n), medias: new Int32Array(n) };
  for (let i = 0; i < n; i++) {
    const [a, b] = [lmk[i], tid[i]];
    const nums = a.slice(1).map(Number);
    if (a.length !== 12 || nums.some((v) => !Number.isFinite(v))) throw new Error(`ijb: ${lmkFile}:${i + 1}: expected 'image x1 y1 … x5 y5 score', got '${a.join(' ')}'`);
    const [t, m] = [Number(b[1]), Number(b[2])];
    if (b.length !== 3 || !Number.isSafeInteger(t) || !Number.isSafeInteger(m)) throw new Error(`ijb: ${tidFile}:${i + 1}: expected 'image template media', got '${b.join(' ')}'`);
    if (b[0] !== a[0]) throw new Error(`ijb: line ${i + 1} names ${a[0]} in ${lmkFile} but ${b[0]} in ${tidFile}`);
    meta.names.push(a[0]);
    meta.landmarks.set(nums.slice(0, 10), 10 * i);
    meta.faceness[i] = nums[10];
    [meta.templates[i], meta.medias[i]] = [t, m];
  }
  return meta;
}

export interface IjbEmbedOptions {
  /** Model name and weights file: with the set and `variant`, they key the cache. */
  model: string;
  weights?: string;
  /** Whatever else changes the features (an MoE's head, an embedding size override). */
  variant?: string;
  /** Folder of the feature caches (`<set>-<key>.f32` and its `.json`). */
  cache?: string;
  /** Whose warpAffine the aligned crops reproduce (see `AlignWarp`); part of the cache key. */
  warp?: AlignWarp;
  batch?: number;
  /** Progress lines go there (null: silent). */
  out?: NodeJS.WriteStream | null;
}

/** The cache file for these features: a hash of the model's name, the weights' bytes and the
 *  set's image list (so a moved root still hits, an edited list does not). */
export function ijbCacheFile(meta: IjbMeta, o: IjbEmbedOptions): string {
  const h = crypto.createHash('sha256').update(`${o.model}\0${o.variant ?? ''}\0${meta.set}\0${o.warp ?? DEFAULT_ALIGN_WARP}\0`).update(fs.readFileSync(metaFile(meta.root, meta.set, 'name_5pts_score')));
  if (o.weights !== undefined) {
    const fd = fs.openSync(o.weights, 'r');
    const buf = Buffer.alloc(1 << 22);
    for (let k; (k = fs.readSync(fd, buf)) > 0; ) h.update(buf.subarray(0, k));
    fs.closeSync(fd);
  }
  return path.join(o.cache ?? path.join(os.tmpdir(), 'maskfr-ijb'), `${meta.set}-${h.digest('hex').slice(0, 20)}.f32`);
}

function progressLine(out: NodeJS.WriteStream, done: number, total: number, from: number, t0: number): void {
  const secs = (performance.now() - t0) / 1000;
  const rate = (done - from) / secs;
  const filled = Math.round((24 * done) / total);
  const line = `[${'#'.repeat(filled)}${'.'.repeat(24 - filled)}] ${done}/${total} images  ${rate.toFixed(1)} img/s  ETA ${duration((total - done) / rate)}`;
  out.write(out.isTTY === true ? `\r${line}\x1b[K${done === total ? '\n' : ''}` : `${line}\n`);
}

/** Every image's feature (image + mirror embeddings summed, unnormalised) in the cache file,
 *  embedding only what it lacks: an interrupted run continues where it stopped. Returns the
 *  file and the feature size. */
export function embedIjb(model: Module, meta: IjbMeta, o: IjbEmbedOptions): { file: string; dim: number; embedded: number } {
  const warp = o.warp ?? DEFAULT_ALIGN_WARP;
  const file = ijbCacheFile(meta, o);
  const info = `${file.slice(0, -4)}.json`;
  const n = meta.names.length;
  const batch = o.batch ?? 64;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  let dim = fs.existsSync(info) ? (JSON.parse(fs.readFileSync(info, 'utf8')) as { dim: number }).dim : 0;
  // Whole rows only: a partial last row of a killed run is cut off and embedded again.
  let done = dim > 0 && fs.existsSync(file) ? Math.min(n, Math.floor(fs.statSync(file).size / (4 * dim))) : 0;
  // Without its .json a feature file's rows cannot be told apart: it starts again.
  if (fs.existsSync(file)) fs.truncateSync(file, done * 4 * dim);
  const [from, t0, out] = [done, performance.now(), o.out === undefined ? process.stderr : o.out];
  const wasTraining = model.training;
  model.eval();
  try {
    for (; done < n; done += batch) {
      const end = Math.min(n, done + batch);
      const names = meta.names.slice(done, end).map((nm) => path.join(meta.root, 'loose_crop', nm));
      const images = names.map((f) => fs.readFileSync(f));
      const e = tidy(() =>
        noGrad(() => {
          const x = ops.to(new Tensor(native.ijbFaces(images, meta.landmarks.subarray(10 * done, 10 * end), names, warp)), model.device);
          return (model.forward(x) as Tensor).toFloat32Array();
        }),
      );
      // The faces' embeddings, then their mirrors': summed in float32 as eval_ijbc.py sums them.
      const f = e.slice(0, e.length / 2).map((v, j) => v + e[e.length / 2 + j]);
      const bad = f.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new NonFiniteTensor(`ijb: the model's embedding of ${names[Math.floor(bad / (f.length / (end - done)))]} holds ${f[bad]}: the weights are not usable`);
      if (dim === 0) {
        dim = f.length / (end - done);
        fs.writeFileSync(info, JSON.stringify({ model: o.model, weights: o.weights ?? null, set: meta.set, root: meta.root, warp, images: n, dim }, null, 2));
      }
      fs.appendFileSync(file, new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
      if (out !== null) progressLine(out, end, n, from, t0);
    }
  } finally {
    model.train(wasTraining);
  }
  return { file, dim, embedded: n - from };
}

export interface IjbLevel {
  far: number;
  tar: number;
  /** The kept FAR the TAR was read at (the nearest to `far`), and its score threshold. */
  at: number;
  threshold: number;
}

export interface IjbVerification {
  set: IjbSet;
  model: string;
  images: number;
  templates: number;
  pairs: number;
  genuine: number;
  impostors: number;
  /** Whether each image's feature was weighted by its detector score. */
  detectorScore: boolean;
  /** Whose warpAffine aligned the loose crops (null: features given, not embedded here). */
  warp: AlignWarp | null;
  levels: IjbLevel[];
  /** `[far, tar]` on a log grid, read as the table is. */
  curve: [number, number][];
  seconds: number;
}

export interface IjbVerifyOptions {
  model?: string;
  detectorScore?: boolean;
  /** How the features' crops were aligned (`embedIjb`'s warp), for the report. */
  warp?: AlignWarp;
  fars?: number[];
  /** Image features `[n·dim]` in the meta's order (else read from `file`). */
  features?: Float32Array;
  file?: string;
  dim?: number;
}

/** Every template's feature as eval_ijbc.py pools it (unnormalised): per template, the mean
 *  image feature (× detector score) of each media, summed over medias. Templates ascending. */
function poolTemplates(meta: IjbMeta, o: IjbVerifyOptions): { ids: number[]; row: Map<number, number>; pooled: Float64Array; dim: number } {
  const n = meta.names.length;
  const dim = o.dim ?? (o.features !== undefined ? o.features.length / Math.max(1, n) : 0);
  if (!Number.isInteger(dim) || dim < 1 || (o.features !== undefined && o.features.length !== n * dim)) throw new Error(`ijb: ${o.features?.length} feature values for ${n} images`);
  const detector = o.detectorScore ?? true;
  const ids = [...new Set(meta.templates)].sort((a, b) => a - b);
  const row = new Map(ids.map((t, k) => [t, k]));
  // A media's mean, summed over a template's medias, is Σ feature / (images of its media).
  const count = new Map<string, number>();
  const key = (i: number) => `${meta.templates[i]}:${meta.medias[i]}`;
  for (let i = 0; i < n; i++) count.set(key(i), (count.get(key(i)) ?? 0) + 1);
  const pooled = new Float64Array(ids.length * dim);
  const chunk = 4096;
  const fd = o.features === undefined ? fs.openSync(o.file!, 'r') : -1;
  try {
    const buf = new Float32Array(chunk * dim);
    for (let a = 0; a < n; a += chunk) {
      const b = Math.min(n, a + chunk);
      let f: Float32Array;
      if (o.features !== undefined) f = o.features.subarray(a * dim, b * dim);
      else {
        const bytes = (b - a) * dim * 4;
        if (fs.readSync(fd, new Uint8Array(buf.buffer, 0, bytes), 0, bytes, a * dim * 4) !== bytes) throw new Error(`ijb: ${o.file} holds fewer than ${n} features of size ${dim}: embed the set again`);
        f = buf.subarray(0, (b - a) * dim);
      }
      for (let i = a; i < b; i++) {
        const w = (detector ? meta.faceness[i] : 1) / count.get(key(i))!;
        const [dst, src] = [row.get(meta.templates[i])! * dim, (i - a) * dim];
        for (let j = 0; j < dim; j++) pooled[dst + j] += w * f[src + j];
      }
    }
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
  return { ids, row, pooled, dim };
}

/** Pools the features into templates, scores the set's pairs and reads TAR@FAR. */
export function verifyIjb(meta: IjbMeta, o: IjbVerifyOptions): IjbVerification & { scores: Float64Array } {
  const t0 = performance.now();
  const { ids, row, pooled, dim } = poolTemplates(meta, o);
  const detector = o.detectorScore ?? true;
  const pairFile = metaFile(meta.root, meta.set, 'template_pair_label');
  if (!fs.existsSync(pairFile)) throw new Error(`ijb: ${pairFile} is missing`);
  const p = native.ijbReadPairs(pairFile);
  const rows = (ts: Int32Array) =>
    Uint32Array.from(ts, (t) => {
      const r = row.get(t);
      if (r === undefined) throw new Error(`ijb: ${pairFile} pairs template ${t}, which no image of ${metaFile(meta.root, meta.set, 'face_tid_mid')} belongs to`);
      return r;
    });
  const genuine = p.same.reduce((s, v) => s + v, 0);
  if (genuine === 0 || genuine === p.same.length) throw new Error(`ijb: ${pairFile} needs genuine and impostor pairs (${genuine} of ${p.same.length} are genuine)`);
  const v = native.ijbVerify(pooled, dim, rows(p.first), rows(p.second), p.same, o.fars ?? FAR_LEVELS, CURVE_FARS);
  return {
    set: meta.set,
    model: o.model ?? 'model',
    images: meta.names.length,
    templates: ids.length,
    pairs: p.same.length,
    genuine,
    impostors: p.same.length - genuine,
    detectorScore: detector,
    warp: o.warp ?? null,
    levels: v.reads,
    curve: v.curve.map(([f, t]) => [f, t] as [number, number]),
    seconds: (performance.now() - t0) / 1000,
    scores: v.scores,
  };
}

export const RANKS = [1, 5, 10];
export const FPIR_LEVELS = [1e-3, 1e-2, 1e-1];

/** The report's words for how the crops were aligned. */
export function alignedBy(warp: AlignWarp): string {
  return `crops aligned with ${warp === 'float' ? "OpenCV 5.x's float" : "OpenCV 4.x's fixed-point"} warpAffine (--warp ${warp})`;
}

export interface IjbIdentification {
  set: IjbSet;
  model: string;
  probes: number;
  gallery: number;
  detectorScore: boolean;
  warp: AlignWarp | null;
  /** The share of probes whose mate ranks within the first `rank` gallery templates. */
  ranks: { rank: number; rate: number }[];
  /** TPIR at FPIR as ijb_1n.py reads it: the share of mates scoring above the
   *  ⌈probes · FPIR⌉-th highest non-mate score of all probes. */
  levels: { fpir: number; tpir: number; threshold: number }[];
  seconds: number;
}

/** `meta/<set>_1N_*.csv`: the first two columns (template, subject) of each row after the
 *  header; a template's subject from its first row. */
function readTemplateSubjects(file: string): Map<number, number> {
  if (!fs.existsSync(file)) throw new Error(`ijb: ${file} is missing (1:N needs the set's gallery and probe lists)`);
  const out = new Map<number, number>();
  fs.readFileSync(file, 'utf8')
    .split('\n')
    .slice(1)
    .forEach((line, i) => {
      if (line.trim() === '') return;
      const [t, s] = line.split(',', 2).map(Number);
      if (!Number.isSafeInteger(t) || !Number.isSafeInteger(s)) throw new Error(`ijb: ${file}:${i + 2}: expected 'TEMPLATE_ID,SUBJECT_ID,…', got '${line.trim()}'`);
      if (!out.has(t)) out.set(t, s);
    });
  return out;
}

/** 1:N identification as insightface's ijb_1n.py computes it: the mixed probe templates
 *  against one gallery of both halves (G1 + G2 for IJB-C, S1 + S2 for IJB-B), templates
 *  pooled as for 1:1. */
export function identifyIjb(meta: IjbMeta, o: IjbVerifyOptions & { fpirs?: number[]; ranks?: number[] }): IjbIdentification {
  const t0 = performance.now();
  const { row, pooled, dim } = poolTemplates(meta, o);
  const csv = (what: string) => path.join(meta.root, 'meta', `${meta.set.toLowerCase()}_1N_${what}.csv`);
  const halves = meta.set === 'IJBC' ? ['G1', 'G2'] : ['S1', 'S2'];
  const gallery = new Map<number, number>();
  for (const h of halves) for (const [t, s] of readTemplateSubjects(csv(`gallery_${h}`))) if (!gallery.has(t)) gallery.set(t, s);
  const probes = readTemplateSubjects(csv('probe_mixed'));
  const rowsOf = (ts: Map<number, number>) => {
    const out = new Float64Array(ts.size * dim);
    [...ts.keys()].forEach((t, k) => {
      const r = row.get(t);
      if (r === undefined) throw new Error(`ijb: 1:N template ${t} has no image in ${metaFile(meta.root, meta.set, 'face_tid_mid')}`);
      out.set(pooled.subarray(r * dim, (r + 1) * dim), k * dim);
    });
    return out;
  };
  const bySubject = new Map<number, number[]>();
  [...gallery.values()].forEach((s, k) => bySubject.set(s, [...(bySubject.get(s) ?? []), k]));
  const mate = Uint32Array.from(probes, ([t, s]) => {
    const g = bySubject.get(s) ?? [];
    if (g.length !== 1) throw new Error(`ijb: probe template ${t}'s subject ${s} has ${g.length} gallery templates; 1:N needs exactly one`);
    return g[0];
  });
  const fpirs = o.fpirs ?? FPIR_LEVELS;
  const q = probes.size;
  const need = fpirs.map((f) => Math.ceil(q * f));
  const r = native.ijbIdentify(rowsOf(probes), rowsOf(gallery), dim, mate, Math.max(...need));
  return {
    set: meta.set,
    model: o.model ?? 'model',
    probes: q,
    gallery: gallery.size,
    detectorScore: o.detectorScore ?? true,
    warp: o.warp ?? null,
    ranks: (o.ranks ?? RANKS).map((k) => ({ rank: k, rate: r.ranks.filter((x) => x <= k).length / q })),
    levels: fpirs.map((fpir, i) => {
      const threshold = r.nonMates[need[i] - 1];
      return { fpir, tpir: r.mates.filter((m) => m > threshold).length / q, threshold };
    }),
    seconds: (performance.now() - t0) / 1000,
  };
}

const curves = (r: IjbVerification) => [{ name: r.set, color: '#d62728', points: r.curve }];

function html(r: IjbVerification): string {
  const rows = r.levels.map((l) => `<tr><td>${l.far.toExponential(0)}</td><td>${(100 * l.tar).toFixed(2)}%</td><td>${l.at.toExponential(2)}</td><td>${l.threshold.toFixed(4)}</td></tr>`);
  return `<!doctype html><html><head><meta charset="utf-8"><title>maskfr ${r.set}: ${r.model}</title>
<style>body{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style></head><body>
<h1>${r.set} 1:1 verification: ${r.model}</h1>
<p>${r.images.toLocaleString('en')} images in ${r.templates.toLocaleString('en')} templates; ${r.genuine.toLocaleString('en')} genuine and ${r.impostors.toLocaleString('en')} impostor template pairs. Features: ${r.warp === null ? '' : `${alignedBy(r.warp)}; `}image + mirror embeddings summed${r.detectorScore ? ', × detector score' : ''}; media means summed per template, normalised; cosine scores. TAR read as insightface's eval_ijbc.py reads it: sklearn's ROC at the kept FAR nearest each level.</p>
${rocSvg(curves(r))}
<table><tr><th>FAR</th><th>TAR</th><th>read at FAR</th><th>threshold</th></tr>${rows.join('')}</table>
<p>Scored in ${r.seconds.toFixed(1)} s.</p>
</body></html>
`;
}

/** Writes `<set>_1n.json` and `<set>_1n.html` into `dir`; returns their paths. */
export function writeIjbIdentificationReport(dir: string, r: IjbIdentification): { json: string; html: string } {
  fs.mkdirSync(dir, { recursive: true });
  const base = path.join(dir, `${r.set.toLowerCase()}_1n`);
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const ranks = r.ranks.map((k) => `<tr><td>rank-${k.rank}</td><td>${pct(k.rate)}</td></tr>`).join('');
  const levels = r.levels.map((l) => `<tr><td>${l.fpir.toExponential(0)}</td><td>${pct(l.tpir)}</td><td>${l.threshold.toFixed(4)}</td></tr>`).join('');
  const page = `<!doctype html><html><head><meta charset="utf-8"><title>maskfr ${r.set} 1:N: ${r.model}</title>
<style>body{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style></head><body>
<h1>${r.set} 1:N identification: ${r.model}</h1>
<p>${r.probes.toLocaleString('en')} mixed probe templates against a gallery of ${r.gallery.toLocaleString('en')} templates (both halves), as insightface's ijb_1n.py scores them${r.detectorScore ? '; features × detector score' : ''}${r.warp === null ? '' : `; ${alignedBy(r.warp)}`}.</p>
<table><tr><th>rank</th><th>identification rate</th></tr>${ranks}</table>
<table><tr><th>FPIR</th><th>TPIR</th><th>threshold</th></tr>${levels}</table>
<p>Scored in ${r.seconds.toFixed(1)} s. FPIR thresholds: the ⌈probes · FPIR⌉-th highest non-mate score of all probes.</p>
</body></html>
`;
  const out = { json: `${base}.json`, html: `${base}.html` };
  fs.writeFileSync(out.json, JSON.stringify(r, null, 2));
  fs.writeFileSync(out.html, page);
  return out;
}

/** Writes `<set>.json`, `<set>.html` and `<set>_roc.png` into `dir`; returns their paths. */
export function writeIjbReport(dir: string, r: IjbVerification): { json: string; html: string; png: string } {
  fs.mkdirSync(dir, { recursive: true });
  const base = path.join(dir, r.set.toLowerCase());
  const out = { json: `${base}.json`, html: `${base}.html`, png: `${base}_roc.png` };
  // Never the pair scores a verification may carry (IJB-C has 15.7 million).
  fs.writeFileSync(out.json, JSON.stringify({ ...r, scores: undefined }, null, 2));
  fs.writeFileSync(out.html, html(r));
  fs.writeFileSync(out.png, rocPng(curves(r)));
  return out;
}
