// `maskfr ijb`: IJB-B / IJB-C 1:1 template verification of a model (TAR@FAR 1e-6 … 1e-1 as
// insightface's eval_ijbc.py reports it), features cached per model and set.

import { embedIjb, IJB_SETS, IjbSet, readIjbMeta, verifyIjb, writeIjbReport } from '../eval/ijb';
import { isOnnxFile } from '../io/weights-file';
import { Command, integerOption, Parsed, required } from './args';
import { MASKED, MODEL_OR_ONNX, weightedModel, WEIGHTS_UNLESS_ONNX } from './models';

export const ijbCommand: Command = {
  summary: 'IJB-B / IJB-C 1:1 verification: TAR@FAR 1e-6 … 1e-1 over template pairs, as insightface\'s eval_ijbc.py',
  usage: 'maskfr ijb --set IJBB|IJBC --root DIR --model NAME --weights W [options]',
  options: [
    { name: 'set', value: IJB_SETS.join('|'), default: 'IJBC', help: 'which benchmark (its meta files are meta/<set>_*.txt)' },
    { name: 'root', value: 'DIR', required: true, help: 'the set\'s folder: meta/ and loose_crop/' },
    MODEL_OR_ONNX,
    WEIGHTS_UNLESS_ONNX('the weights to evaluate'),
    { name: 'detector-score', value: 'true|false', default: 'true', help: 'weight each image\'s feature by its detector score (eval_ijbc.py\'s default)' },
    { name: 'cache', value: 'DIR', help: 'where image features are kept (one file per model, weights and set)', defaultHelp: '<tmp>/maskfr-ijb' },
    { name: 'report', value: 'DIR', help: 'write <set>.json, <set>.html and <set>_roc.png there', defaultHelp: 'none: print only' },
    { name: 'batch', value: 'N', default: '64', help: 'images per forward (each with its mirror)' },
    { name: 'embedding', value: 'D', help: 'the embedding size the weights were trained with (a table model)', defaultHelp: "the model's" },
    MASKED,
  ],
  example: 'maskfr ijb --set IJBC --root data/IJB_release/IJBC --model r100 --weights ms1mv3_r100.pt --report reports/r100',
  run: ijb,
};

function ijb(p: Parsed): number {
  const [set, root, name] = ['set', 'root', 'model'].map((k) => required(p, k));
  if (!(IJB_SETS as readonly string[]).includes(set)) throw new Error(`ijb: --set must be one of ${IJB_SETS.join(', ')}, got ${set}`);
  const detector = required(p, 'detector-score');
  if (detector !== 'true' && detector !== 'false') throw new Error(`ijb: --detector-score must be true or false, got ${detector}`);
  const meta = readIjbMeta(root, set as IjbSet);
  const model = weightedModel(p, p.options.has('embedding') ? { embedding: integerOption(p, 'embedding', 1) } : {});
  const weights = p.options.get('weights');
  const e = embedIjb(model, meta, { model: name, weights: isOnnxFile(name) ? name : weights, cache: p.options.get('cache'), batch: integerOption(p, 'batch', 1) });
  model.dispose();
  console.log(`${meta.names.length} images: ${e.embedded} embedded, ${meta.names.length - e.embedded} from ${e.file}`);
  const r = verifyIjb(meta, { file: e.file, dim: e.dim, model: name, detectorScore: detector === 'true' });
  console.log(`${set}: ${r.templates} templates, ${r.genuine} genuine and ${r.impostors} impostor pairs${r.detectorScore ? ' (features × detector score)' : ''}`);
  console.log(`  ${'FAR'.padEnd(7)}  ${'TAR'.padStart(7)}  read at FAR`);
  for (const l of r.levels) console.log(`  ${l.far.toExponential(0).padEnd(7)}  ${(100 * l.tar).toFixed(2).padStart(6)}%  ${l.at.toExponential(2)}`);
  const dir = p.options.get('report');
  if (dir !== undefined) {
    const out = writeIjbReport(dir, r);
    console.log(`wrote ${out.json}, ${out.html} and ${out.png}`);
  }
  return 0;
}
