// `maskfr plan`: per-GPU memory of a training run and, with a measured rate, its wall time.

import { plan, PLAN_DEFAULTS, WEBFACE42M_IMAGES } from '../train/plan';
import { Command, Parsed, required } from './args';
import { MODEL } from './models';

const GiB = 2 ** 30;

export const planCommand: Command = {
  summary: 'per-GPU memory of a training run and, with a measured rate, its wall time',
  usage: 'maskfr plan --model NAME --classes N --gpus N --batch N [options]',
  options: [
    MODEL,
    { name: 'classes', value: 'N', required: true, help: 'identities in the training set' },
    { name: 'gpus', value: 'N', required: true, help: 'GPUs (ranks) sharing the classifier' },
    { name: 'batch', value: 'N', required: true, help: 'images per GPU per step' },
    { name: 'sample-rate', value: 'R', default: String(PLAN_DEFAULTS.sampleRate), help: "partial FC's share of the classes sampled per step" },
    { name: 'chunk', value: 'N', default: String(PLAN_DEFAULTS.chunk), help: 'classes per logits chunk (0: unchunked)' },
    { name: 'card-gib', value: 'G', help: 'the card memory to check the total against', defaultHelp: 'none: no verdict' },
    { name: 'images-per-second', value: 'X', help: 'a measured training rate, for the wall time', defaultHelp: 'none: no wall time' },
    { name: 'epochs', value: 'N', default: String(PLAN_DEFAULTS.epochs), help: 'epochs of WebFace42M for the wall time' },
    { name: 'fp16', help: 'fp16 mixed precision (fp32 master weights plus an fp16 copy)' },
    { name: 'checkpointing', help: 'activation checkpointing (recompute in the backward)' },
  ],
  example: 'maskfr plan --model resnet240 --classes 2059906 --gpus 8 --batch 128 --sample-rate 0.2 --fp16 --card-gib 80 --images-per-second 4000',
  run: planMemory,
};

function planMemory(p: Parsed): number {
  const num = (name: string) => {
    const v = required(p, name);
    const n = Number(v);
    if (!(n > 0) && !(name === 'chunk' && n === 0)) throw new Error(`plan: --${name} must be a positive number, got ${v}`);
    return n;
  };
  const model = required(p, 'model');
  const card = p.options.get('card-gib');
  const rate = p.options.get('images-per-second');
  const r = plan({
    model,
    classes: num('classes'),
    gpus: num('gpus'),
    batch: num('batch'),
    sampleRate: num('sample-rate'),
    fp16: p.flags.has('fp16'),
    checkpointing: p.flags.has('checkpointing'),
    chunk: num('chunk'),
    cardGiB: card === undefined ? undefined : num('card-gib'),
    imagesPerSecond: rate === undefined ? undefined : num('images-per-second'),
    epochs: num('epochs'),
  });
  const g = (b: number) => `${(b / GiB).toFixed(2).padStart(8)} GiB`;
  console.log(`${model}: ${(r.params / 1e6).toFixed(1)}M parameters; per GPU:`);
  console.log(`  parameters   ${g(r.parameters)}${p.flags.has('fp16') ? '  (fp32 master + fp16 copy)' : ''}`);
  console.log(`  gradients    ${g(r.gradients)}`);
  console.log(`  momentum     ${g(r.optimizer)}`);
  console.log(`  activations  ${g(r.activations)}${p.flags.has('checkpointing') ? '  (checkpointed)' : ''}`);
  console.log(`  classifier   ${g(r.classifier)}  (weight, gradient, momentum of ${Math.ceil(num('classes') / num('gpus')).toLocaleString('en')} classes)`);
  console.log(`  logits       ${g(r.logits)}  (chunked; unchunked would be ${(r.logitsUnchunked / GiB).toFixed(2)} GiB)`);
  console.log(`  overhead     ${g(r.overhead)}  (CUDA context, workspaces)`);
  console.log(`  total        ${g(r.total)}${r.fits === null ? '' : r.fits ? `: fits a ${card} GiB card` : `: does NOT fit a ${card} GiB card`}`);
  if (r.hours !== null) console.log(`${num('epochs')} epochs of WebFace42M (${WEBFACE42M_IMAGES.toLocaleString('en')} images) at ${rate} images/s: ${r.hours.toFixed(1)} hours (${(r.hours / 24).toFixed(1)} days)`);
  return r.fits === false ? 1 : 0;
}
