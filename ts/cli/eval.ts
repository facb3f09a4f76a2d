// `maskfr eval`: a model's verification on a `.bin` pair set (10-fold accuracy), or its
// MFR / SFR report on a labelled test set (`.rec` or image folder).

import fs from 'node:fs';
import path from 'node:path';
import { openTrainingData } from '../data/training-data';
import { verify, ProbeMasks } from '../eval/verification';
import { readVerificationBin } from '../data/verification-bin';
import { evaluateMaskedFaces, writeReport, CHALLENGE } from '../eval/report';
import { breakdownLines, pairBreakdownLines } from '../eval/breakdown';
import { MaskSidecar, readMaskSidecar, sidecarKeys, sidecarPath } from '../eval/mask-sidecar';
import { Command, integerOption, Parsed, required } from './args';
import { EMBEDDING, MASKED, MODEL_OR_ONNX, weightedModel, WEIGHTS_UNLESS_ONNX } from './models';

const STYLES = ['mixed', 'template', 'renderer', 'held-out'];

export const evalCommand: Command = {
  summary: 'verification: 10-fold accuracy on a .bin pair set, or the MFR / SFR report on a labelled set (.rec or image folder)',
  usage: 'maskfr eval --model NAME --weights W.safetensors|W.pt --data X.bin|X.rec|DIR [options] | maskfr eval --model M.onnx --data …',
  options: [
    MODEL_OR_ONNX,
    WEIGHTS_UNLESS_ONNX('the weights to evaluate'),
    { name: 'data', value: 'X.bin|X.rec|DIR', required: true, help: 'a .bin pair set, or a labelled test set' },
    { name: 'report', value: 'DIR', help: 'write the results there (JSON; with a labelled set also HTML and the ROC as PNG)', defaultHelp: 'none: print only' },
    { name: 'mask', value: STYLES.join('|'), default: 'mixed', help: "a labelled set's probe masks: which synthesizer" },
    { name: 'seed', value: 'S', default: '7', help: "the probe masks' seed" },
    {
      name: 'masks',
      value: 'FILE|none',
      help: "the set is pre-masked: the sidecar of 'maskfr mask' (one line per image, checked against the set's keys) gives each image its mask. A .bin's results are then also broken down by mask; a labelled set is scored with its masked images as probes and its unmasked ones as gallery (--mask and --seed unused). 'none': ignore a sidecar beside the data",
      defaultHelp: "DATA.masks.jsonl when it exists (where 'maskfr mask' writes it), else masks drawn on the fly",
    },
    {
      name: 'gallery',
      value: 'X.rec|DIR',
      help: 'with a pre-masked labelled set: the unmasked set it was masked from (same images, same order), whose images are then the gallery and SFR\'s pairs, each probe\'s own source left out',
      defaultHelp: "the pre-masked set's own unmasked images",
    },
    { name: 'batch', value: 'N', default: '64', help: 'images per forward' },
    EMBEDDING,
    MASKED,
  ],
  example: 'maskfr eval --model resnet240 --weights runs/wf42m_resnet240_kd/model.safetensors --data data/test.rec --report reports/resnet240',
  run: evaluate,
};

function evaluate(p: Parsed): number {
  const [name, data] = ['model', 'data'].map((k) => required(p, k));
  const weights = p.options.get('weights');
  const style = required(p, 'mask');
  if (!STYLES.includes(style)) throw new Error(`eval: --mask must be one of ${STYLES.join(', ')}, got ${style}`);
  const batch = integerOption(p, 'batch', 1);
  const seed = integerOption(p, 'seed', 0);
  const dir = p.options.get('report');
  // The sidecar is checked before the model is loaded: a wrong one fails in seconds.
  const bin = data.endsWith('.bin') ? readVerificationBin(data) : null;
  const sidecar = premasked(data, p.options.get('masks'), bin?.images.length ?? 0);
  const galleryPath = p.options.get('gallery');
  if (galleryPath !== undefined && bin !== null) throw new Error('eval: --gallery is for a pre-masked labelled set; a .bin holds its own pairs');
  if (galleryPath !== undefined && sidecar === null) throw new Error(`eval: --gallery ${galleryPath} needs a pre-masked --data (its masks sidecar, by --masks or beside it); without one the probes are masked on the fly from --data itself`);
  const model = weightedModel(p, p.options.has('embedding') ? { embedding: integerOption(p, 'embedding', 1) } : {});
  if (bin !== null) {
    const masks = sidecar === null ? null : { source: sidecar.file, masks: sidecar.masks };
    const v = verify(model, bin, { name: path.basename(data, '.bin'), batch, masks });
    console.log(`${v.name}: ${(100 * v.accuracy).toFixed(2)}% ± ${(100 * v.std).toFixed(2)} over ${v.pairs} pairs (10-fold; mean threshold ${v.threshold.toFixed(3)})`);
    if (v.breakdown !== undefined) pairBreakdownLines(v.breakdown).forEach((l) => console.log(l));
    if (dir !== undefined) {
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, `${v.name}.json`), JSON.stringify({ model: name, weights, ...v }, null, 2));
    }
  } else {
    const mask: ProbeMasks = { style: style as ProbeMasks['style'], seed };
    const gallery = galleryPath === undefined ? {} : { gallery: openTrainingData(galleryPath) };
    const pre = sidecar === null ? {} : { premasked: { source: sidecar.file, masks: sidecar.masks, ...gallery } };
    const r = evaluateMaskedFaces(model, openTrainingData(data), { model: name, mask, batch, ...pre });
    const pct = (v: number) => `${(100 * v).toFixed(3)}%`;
    const from = r.premasked?.galleryFrom == null ? 'unmasked gallery images' : `gallery images of ${r.premasked.galleryFrom}`;
    const probes = r.premasked === null ? `probes masked '${style}'` : `pre-masked per ${r.premasked.sidecar}: ${r.premasked.probes} masked probes, ${r.premasked.gallery} ${from}`;
    console.log(`${data}: ${r.images} images, ${r.identities} identities, ${probes}`);
    console.log(`FNMR @ FMR 1e-5: MFR ${pct(r.headline.mfr)}, SFR ${pct(r.headline.sfr)}${r.headline.measurable ? '' : ' (too few impostor pairs to measure)'}`);
    console.log(`MFR challenge score: ${(100 * r.challenge.score).toFixed(3)} = 0.25 × MFR TAR@1e-4 ${pct(r.challenge.mask)} + 0.75 × SFR TAR@1e-6 ${pct(r.challenge.all)}${r.challenge.measurable ? '' : ' (too few impostor pairs to measure)'}`);
    console.log('  FMR      MFR TAR    SFR TAR    impostor pairs (MFR)  false matches allowed');
    r.mfr.levels.forEach((l, i) =>
      console.log(`  ${l.fmr.toExponential(0).padEnd(7)}  ${pct(l.tar).padStart(9)}  ${pct(r.sfr.levels[i].tar).padStart(9)}  ${String(l.impostors).padStart(20)}  ${l.falseMatchesAllowed < 1 ? '<1: not measurable' : l.falseMatchesAllowed}`),
    );
    breakdownLines(r.breakdown, CHALLENGE.maskFar).forEach((l) => console.log(l));
    if (dir !== undefined) {
      const out = writeReport(dir, r);
      console.log(`wrote ${out.json}, ${out.html} and ${out.png}`);
    }
  }
  model.dispose();
  return 0;
}

/** The sidecar of a pre-masked `data`: `--masks FILE`, or the one beside the data; none with
 *  `--masks none` or when there is none beside it. */
function premasked(data: string, option: string | undefined, binImages: number): MaskSidecar | null {
  if (option === 'none') return null;
  const file = option ?? sidecarPath(data);
  if (option === undefined && !fs.existsSync(file)) return null;
  const s = readMaskSidecar(file, sidecarKeys(data, binImages), data);
  console.log(`masks: ${file}${option === undefined ? ' (the sidecar beside the data)' : ''}`);
  return s;
}
