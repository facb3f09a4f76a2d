// `maskfr ijb`: IJB-B / IJB-C template verification (TAR@FAR 1e-6 … 1e-1 as insightface's
// eval_ijbc.py reports it) and identification (rank-k, TPIR@FPIR as ijb_1n.py does), image
// features cached per model and set so every protocol shares one embedding pass.

import { alignedBy, embedIjb, identifyIjb, IJB_SETS, IjbSet, readIjbMeta, verifyIjb, writeIjbIdentificationReport, writeIjbReport } from '../eval/ijb';
import { isOnnxFile } from '../io/weights-file';
import { Command, integerOption, Parsed, required } from './args';
import { WARP_HELP, warpOption } from './align';
import { DEFAULT_ALIGN_WARP } from '../data/align';
import { EMBEDDING, MASKED, MODEL_OR_ONNX, weightedModel, WEIGHTS_UNLESS_ONNX } from './models';

export const ijbCommand: Command = {
  summary: 'IJB-B / IJB-C: 1:1 TAR@FAR 1e-6 … 1e-1 (eval_ijbc.py) and 1:N rank-1/5/10, TPIR@FPIR 1e-3 … 1e-1 (ijb_1n.py)',
  usage: 'maskfr ijb --set IJBB|IJBC --root DIR --model NAME --weights W [options]',
  options: [
    { name: 'set', value: IJB_SETS.join('|'), default: 'IJBC', help: 'which benchmark (its meta files are meta/<set>_*.txt)' },
    { name: 'root', value: 'DIR', required: true, help: 'the set\'s folder: meta/ and loose_crop/' },
    MODEL_OR_ONNX,
    WEIGHTS_UNLESS_ONNX('the weights to evaluate'),
    { name: 'protocol', value: '1:1|1:N|both', default: '1:1', help: 'template-pair verification, identification against the G1+G2 (S1+S2) gallery, or both' },
    { name: 'detector-score', value: 'true|false', default: 'true', help: 'weight each image\'s feature by its detector score (eval_ijbc.py\'s default)' },
    { name: 'warp', value: 'float|fixed', default: DEFAULT_ALIGN_WARP, help: `aligning the loose crops: ${WARP_HELP}` },
    { name: 'cache', value: 'DIR', help: 'where image features are kept (one file per model, weights and set)', defaultHelp: '<tmp>/maskfr-ijb' },
    { name: 'report', value: 'DIR', help: 'write <set>.json, <set>.html and <set>_roc.png (1:1), <set>_1n.json and .html (1:N) there', defaultHelp: 'none: print only' },
    { name: 'batch', value: 'N', default: '64', help: 'images per forward (each with its mirror)' },
    EMBEDDING,
    MASKED,
  ],
  example: 'maskfr ijb --set IJBC --root data/IJB_release/IJBC --model r100 --weights ms1mv3_r100.pt --protocol both --report reports/r100',
  run: ijb,
};

function ijb(p: Parsed): number {
  const [set, root, name] = ['set', 'root', 'model'].map((k) => required(p, k));
  if (!(IJB_SETS as readonly string[]).includes(set)) throw new Error(`ijb: --set must be one of ${IJB_SETS.join(', ')}, got ${set}`);
  const detector = required(p, 'detector-score');
  if (detector !== 'true' && detector !== 'false') throw new Error(`ijb: --detector-score must be true or false, got ${detector}`);
  const protocol = required(p, 'protocol');
  if (!['1:1', '1:N', 'both'].includes(protocol)) throw new Error(`ijb: --protocol must be 1:1, 1:N or both, got ${protocol}`);
  const warp = warpOption(p, 'ijb');
  const meta = readIjbMeta(root, set as IjbSet);
  const model = weightedModel(p, p.options.has('embedding') ? { embedding: integerOption(p, 'embedding', 1) } : {});
  const weights = p.options.get('weights');
  const variant = `masked=${p.options.get('masked') ?? 'false'} embedding=${p.options.get('embedding') ?? ''}`;
  const e = embedIjb(model, meta, { model: name, weights: isOnnxFile(name) ? name : weights, variant, cache: p.options.get('cache'), warp, batch: integerOption(p, 'batch', 1) });
  model.dispose();
  console.log(`${meta.names.length} images: ${e.embedded} embedded, ${meta.names.length - e.embedded} from ${e.file}`);
  const o = { file: e.file, dim: e.dim, model: name, detectorScore: detector === 'true', warp };
  const dir = p.options.get('report');
  const weighting = `${o.detectorScore ? ' (features × detector score)' : ''}; ${alignedBy(warp)}`;
  if (protocol !== '1:N') {
    const r = verifyIjb(meta, o);
    console.log(`${set} 1:1: ${r.templates} templates, ${r.genuine} genuine and ${r.impostors} impostor pairs${weighting}`);
    console.log(`  ${'FAR'.padEnd(7)}  ${'TAR'.padStart(7)}  read at FAR`);
    for (const l of r.levels) console.log(`  ${l.far.toExponential(0).padEnd(7)}  ${(100 * l.tar).toFixed(2).padStart(6)}%  ${l.at.toExponential(2)}`);
    if (dir !== undefined) {
      const out = writeIjbReport(dir, r);
      console.log(`wrote ${out.json}, ${out.html} and ${out.png}`);
    }
  }
  if (protocol !== '1:1') {
    const r = identifyIjb(meta, o);
    console.log(`${set} 1:N: ${r.probes} probe templates, a gallery of ${r.gallery}${weighting}`);
    console.log(`  ${r.ranks.map((k) => `rank-${k.rank} ${(100 * k.rate).toFixed(2)}%`).join('  ')}`);
    for (const l of r.levels) console.log(`  TPIR @ FPIR ${l.fpir.toExponential(0)}: ${(100 * l.tpir).toFixed(2)}%`);
    if (dir !== undefined) {
      const out = writeIjbIdentificationReport(dir, r);
      console.log(`wrote ${out.json} and ${out.html}`);
    }
  }
  return 0;
}
