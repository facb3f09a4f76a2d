// The MFR / SFR report of a model on a labelled test set: every image embedded unmasked (the
// gallery) and with a synthesized mask (the probes); SFR scores all unmasked pairs, MFR every
// masked probe against every unmasked gallery image of another capture. The headline is
// FNMR at FMR = 1e-5 (the MFR challenge's); beside it the ICCV21 MFR leaderboard's score,
// 0.25·TAR@Mask (masked probe vs unmasked, FAR 1e-4) + 0.75·TAR@MR-All (all unmasked pairs,
// FAR 1e-6), here with MFR and SFR standing for the challenge's Mask and MR-All sets. MFR is
// broken down by the probes' masks (synthesizer, kind). A pre-masked set (with the sidecar of
// `maskfr mask`) is scored as the challenge's own sets are: its masked images are the probes,
// its unmasked ones the gallery (and SFR's pairs). The report is JSON, a self-contained HTML
// page and a PNG of the ROC curves.

import fs from 'node:fs';
import path from 'node:path';
import { Module } from '../nn/module';
import { Communicator } from '../parallel/comm';
import { TrainingData } from '../data/training-data';
import { embedFlipped, embedMasked, ProbeMasks } from './verification';
import { at, OneToOne, OneToOneOptions, verifyAllVsAll, verifyCross } from './one-to-one';
import { breakdownHtml, crossBreakdown, DrawnMask, MaskBreakdown } from './breakdown';
import { rocPng, rocSvg } from './plot';

export const HEADLINE_FMR = 1e-5;
/** The MFR challenge's levels: TAR@Mask at FAR 1e-4, TAR@MR-All at 1e-6, weighted 1:3. */
export const CHALLENGE = { maskFar: 1e-4, allFar: 1e-6, maskWeight: 0.25, allWeight: 0.75 };

export interface MaskedFaceReport {
  model: string;
  data: string;
  images: number;
  identities: number;
  /** The probes' masks drawn on the fly, or null for a pre-masked set. */
  mask: ProbeMasks | null;
  /** A pre-masked set's sidecar, its masked images (the probes) and the gallery's images: its
   *  own unmasked ones, or (`galleryFrom`) those of the set it was masked from. */
  premasked: { sidecar: string; probes: number; gallery: number; galleryFrom: string | null } | null;
  sfr: OneToOne;
  mfr: OneToOne;
  /** MFR by the probes' synthesizer and mask kind. */
  breakdown: MaskBreakdown;
  /** FNMR at FMR 1e-5, and whether the set has the impostor pairs to measure it. */
  headline: { fmr: number; sfr: number; mfr: number; measurable: boolean };
  /** The challenge's ranking score from this set: 0.25·MFR TAR@1e-4 + 0.75·SFR TAR@1e-6,
   *  measurable when both levels are. */
  challenge: { mask: number; all: number; score: number; measurable: boolean };
  seconds: number;
}

export interface ReportOptions extends OneToOneOptions {
  model?: string;
  mask?: ProbeMasks;
  /** The set is pre-masked: each image's mask (from `source`, its sidecar); `mask` is unused.
   *  `gallery`: the unmasked set it was masked from (else its own unmasked images). */
  premasked?: { source: string; masks: DrawnMask[]; gallery?: TrainingData };
  batch?: number;
  comm?: Communicator | null;
}

export function evaluateMaskedFaces(model: Module, data: TrainingData, o: ReportOptions = {}): MaskedFaceReport {
  const t0 = performance.now();
  const samples = Array.from({ length: data.length }, (_, i) => data.sample(i));
  const images = samples.map((s) => s.image);
  const labels = Int32Array.from(samples, (s) => s.label);
  const embed = { batch: o.batch ?? 64, comm: o.comm ?? null, what: data.path };
  let scored: Pick<MaskedFaceReport, 'mask' | 'premasked' | 'sfr' | 'mfr' | 'breakdown'>;
  if (o.premasked === undefined) {
    const mask = o.mask ?? { style: 'mixed', seed: 7 };
    const gallery = embedFlipped(model, images, embed);
    const { embeddings: probes, masks } = embedMasked(model, images, { ...embed, mask });
    const dim = gallery.length / images.length;
    const mfr = verifyCross(probes, gallery, labels, dim, true, o);
    const breakdown = crossBreakdown('drawn on the fly', masks!, { probe: probes, gallery, labels, dim, paired: true }, mfr.levels);
    scored = { mask, premasked: null, sfr: verifyAllVsAll(gallery, labels, dim, o), mfr, breakdown };
  } else {
    scored = scorePremasked(model, data.path, images, labels, o.premasked, embed, o);
  }
  const { sfr, mfr } = scored;
  const [s, m] = [at(sfr, HEADLINE_FMR), at(mfr, HEADLINE_FMR)];
  const [onMask, onAll] = [at(mfr, CHALLENGE.maskFar), at(sfr, CHALLENGE.allFar)];
  return {
    model: o.model ?? 'model',
    data: data.path,
    images: images.length,
    identities: new Set(labels).size,
    ...scored,
    headline: { fmr: HEADLINE_FMR, sfr: s.fnmr, mfr: m.fnmr, measurable: s.falseMatchesAllowed >= 1 && m.falseMatchesAllowed >= 1 },
    challenge: {
      mask: onMask.tar,
      all: onAll.tar,
      score: CHALLENGE.maskWeight * onMask.tar + CHALLENGE.allWeight * onAll.tar,
      measurable: onMask.falseMatchesAllowed >= 1 && onAll.falseMatchesAllowed >= 1,
    },
    seconds: (performance.now() - t0) / 1000,
  };
}

/** A pre-masked set's masked images against the unmasked gallery: the set's own unmasked
 *  images, or the whole set it was masked from (`gallery`: same images in the same order, each
 *  probe's own source image left out of its pairs). */
function scorePremasked(
  model: Module,
  what: string,
  images: Buffer[],
  labels: Int32Array,
  pre: NonNullable<ReportOptions['premasked']>,
  embed: { batch: number; comm: Communicator | null; what: string },
  o: OneToOneOptions,
): Pick<MaskedFaceReport, 'mask' | 'premasked' | 'sfr' | 'mfr' | 'breakdown'> {
  const { source, masks } = pre;
  if (masks.length !== images.length) throw new Error(`${what}: ${masks.length} masks from ${source} for ${images.length} images`);
  const p = masks.flatMap((m, i) => (m.synthesizer === null ? [] : [i]));
  if (p.length === 0) throw new Error(`${source}: no image of ${what} is masked: no probes`);
  let order: number[];
  let galleryImages: Buffer[];
  if (pre.gallery === undefined) {
    order = masks.flatMap((m, i) => (m.synthesizer === null ? [i] : []));
    if (order.length === 0) throw new Error(`${source}: all ${images.length} images of ${what} are masked; give the unmasked set they were masked from as the gallery (--gallery)`);
    galleryImages = order.map((i) => images[i]);
  } else {
    const g = pre.gallery;
    if (g.length !== images.length) throw new Error(`${g.path}: ${g.length} images, ${what} has ${images.length}: not the set it was masked from`);
    // Probe r's source is gallery row r: the native pairing leaves (r, r) out.
    const set = new Set(p);
    order = [...p, ...labels.keys()].filter((i, k) => k < p.length || !set.has(i));
    galleryImages = order.map((i) => {
      const s = g.sample(i);
      if (s.label !== labels[i]) throw new Error(`${g.path}: image ${i} is of identity ${s.label}, in ${what} of ${labels[i]}: not the set it was masked from`);
      return s.image;
    });
  }
  // The probes as an MoE embeds masked faces (its masked head), the gallery as unmasked ones.
  const probe = embedFlipped(model, p.map((i) => images[i]), { ...embed, masked: true });
  const gallery = embedFlipped(model, galleryImages, embed);
  const dim = gallery.length / galleryImages.length;
  const [pl, gl] = [Int32Array.from(p, (i) => labels[i]), Int32Array.from(order, (i) => labels[i])];
  const paired = pre.gallery !== undefined;
  const mfr = verifyCross(probe, gallery, pl, dim, paired, o, gl);
  const breakdown = crossBreakdown(`from ${source}`, p.map((i) => masks[i]), { probe, gallery, labels: pl, galleryLabels: gl, dim, paired }, mfr.levels);
  return {
    mask: null,
    premasked: { sidecar: source, probes: p.length, gallery: order.length, galleryFrom: pre.gallery?.path ?? null },
    sfr: verifyAllVsAll(gallery, gl, dim, o),
    mfr,
    breakdown,
  };
}

// The challenge's two operating points are marked on their curves.
const CURVES = (r: MaskedFaceReport) => [
  { name: 'MFR', color: '#d62728', points: r.mfr.curve, marks: [[CHALLENGE.maskFar, r.challenge.mask]] as [number, number][] },
  { name: 'SFR', color: '#1f77b4', points: r.sfr.curve, marks: [[CHALLENGE.allFar, r.challenge.all]] as [number, number][] },
];

function levelsTable(name: string, v: OneToOne): string {
  const rows = v.levels.map((l) => {
    const flag = l.falseMatchesAllowed < 1 ? ' class="few" title="too few impostor pairs: not measurable"' : '';
    return `<tr${flag}><td>${l.fmr.toExponential(0)}</td><td>${(100 * l.tar).toFixed(3)}%</td><td>${(100 * l.fnmr).toFixed(3)}%</td><td>${l.threshold.toFixed(4)}</td><td>${l.falseMatchesAllowed.toLocaleString('en')} of ${l.impostors.toLocaleString('en')}</td><td>${l.exact ? 'exact' : 'histogram'}</td></tr>`;
  });
  return `<h2>${name}</h2><p>${v.genuine.toLocaleString('en')} genuine and ${v.impostors.toLocaleString('en')} impostor pairs</p>
<table><tr><th>FMR</th><th>TAR</th><th>FNMR</th><th>threshold</th><th>false matches allowed</th><th>threshold from</th></tr>${rows.join('')}</table>`;
}

/** How the probes were masked, in words. */
export function probesLine(r: MaskedFaceReport): string {
  const pre = r.premasked;
  if (pre !== null) {
    const gallery = pre.galleryFrom === null ? `its ${pre.gallery.toLocaleString('en')} unmasked ones the gallery` : `the ${pre.gallery.toLocaleString('en')} images of ${pre.galleryFrom} (the set it was masked from; each probe's own source left out) the gallery`;
    return `pre-masked: its ${pre.probes.toLocaleString('en')} masked images (per ${pre.sidecar}) are the probes, ${gallery}`;
  }
  return `probes masked with the <b>${r.mask!.style}</b> style (seed ${r.mask!.seed})`;
}

function html(r: MaskedFaceReport): string {
  const pct = (v: number) => `${(100 * v).toFixed(3)}%`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>maskfr report: ${r.model}</title>
<style>body{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}tr.few{color:#999;font-style:italic}.head{font-size:1.3em}</style></head><body>
<h1>Masked-face verification: ${r.model}</h1>
<p>${r.data}: ${r.images.toLocaleString('en')} images of ${r.identities.toLocaleString('en')} identities; ${probesLine(r)}; embeddings of each image and its mirror, summed and normalised.</p>
<p class="head">FNMR @ FMR = 1e-5: <b>MFR ${pct(r.headline.mfr)}</b>, SFR ${pct(r.headline.sfr)}${r.headline.measurable ? '' : ' <i>(too few impostor pairs to measure this level)</i>'}</p>
<p>MFR challenge score (ICCV21 leaderboard: 0.25·TAR@Mask + 0.75·TAR@MR-All): <b>${(100 * r.challenge.score).toFixed(3)}</b> = 0.25 × ${pct(r.challenge.mask)} (MFR TAR @ FAR 1e-4) + 0.75 × ${pct(r.challenge.all)} (SFR TAR @ FAR 1e-6)${r.challenge.measurable ? '' : ' <i>(too few impostor pairs to measure these levels)</i>'}; both points are marked on the curves.</p>
${rocSvg(CURVES(r))}
${levelsTable('MFR: masked probe vs unmasked gallery', r.mfr)}
${breakdownHtml(r.breakdown)}
${levelsTable('SFR: unmasked pairs', r.sfr)}
<p>Scored in ${r.seconds.toFixed(1)} s. Levels whose false matches allowed are below one cannot be measured on this set (greyed).</p>
</body></html>
`;
}

/** Writes `report.json`, `report.html` and `roc.png` into `dir`; returns their paths. */
export function writeReport(dir: string, r: MaskedFaceReport): { json: string; html: string; png: string } {
  fs.mkdirSync(dir, { recursive: true });
  const out = { json: path.join(dir, 'report.json'), html: path.join(dir, 'report.html'), png: path.join(dir, 'roc.png') };
  fs.writeFileSync(out.json, JSON.stringify(r, null, 2));
  fs.writeFileSync(out.html, html(r));
  fs.writeFileSync(out.png, rocPng(CURVES(r)));
  return out;
}
