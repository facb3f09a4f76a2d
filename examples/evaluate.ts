// Evaluate trained weights: `npx tsx evaluate.ts [WEIGHTS]` (default: what train-synthetic.ts
// wrote). 10-fold verification on a `.bin` pair set, then the MFR / SFR report (masked and
// unmasked probes, TAR at each FMR) on a labelled test set, written as JSON, HTML and a ROC plot.
import { at, createModel, evaluateMaskedFaces, loadCheckpoint, openTrainingData, verify, writeReport, writeSyntheticDataset } from 'maskfr';

const weights = process.argv[2] ?? 'runs/small/model.safetensors';
const model = createModel('small');
loadCheckpoint(model, weights);

// Identities the model never saw: seed 2 makes other faces than the training set's seed 1.
const test = writeSyntheticDataset('faces-test', { identities: 20, perIdentity: 6, heldOut: 20, pairs: 200, seed: 2, quality: 90 });
const v = verify(model, test.bin);
console.log(`${test.bin}: ${(100 * v.accuracy).toFixed(1)}% ± ${(100 * v.std).toFixed(1)} over ${v.pairs} pairs`);

const report = evaluateMaskedFaces(model, openTrainingData(test.rec), { model: 'small' });
const files = writeReport('report', report);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const h = report.headline;
console.log(`FNMR @ FMR 1e-5: MFR ${pct(h.mfr)}, SFR ${pct(h.sfr)}${h.measurable ? '' : ' (too few impostor pairs to measure)'}; TAR @ FMR 1e-1: MFR ${pct(at(report.mfr, 1e-1).tar)}, SFR ${pct(at(report.sfr, 1e-1).tar)}`);
console.log(`wrote ${files.json}, ${files.html} and ${files.png}`);
model.dispose();
