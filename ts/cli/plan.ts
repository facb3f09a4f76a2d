// `maskfr plan`: per-GPU memory of a training run and, with a measured rate, its wall time.

import { plan, WEBFACE42M_IMAGES } from '../train/plan';
import { parseArgs, required } from './args';

const GiB = 2 ** 30;

export function planCommand(argv: string[]): number {
  const p = parseArgs('plan', argv, ['model', 'classes', 'gpus', 'batch', 'sample-rate', 'card-gib', 'images-per-second', 'epochs', 'chunk'], ['fp16', 'checkpointing']);
  const num = (name: string, fallback?: number) => {
    const v = p.options.get(name);
    if (v === undefined && fallback !== undefined) return fallback;
    const n = Number(v ?? required('plan', p, name));
    if (!(n > 0) && !(name === 'chunk' && n === 0)) throw new Error(`plan: --${name} must be a positive number, got ${v}`);
    return n;
  };
  const model = required('plan', p, 'model');
  const card = p.options.get('card-gib');
  const rate = p.options.get('images-per-second');
  const r = plan({
    model,
    classes: num('classes'),
    gpus: num('gpus'),
    batch: num('batch'),
    sampleRate: num('sample-rate', 1),
    fp16: p.flags.has('fp16'),
    checkpointing: p.flags.has('checkpointing'),
    chunk: num('chunk', 8192),
    cardGiB: card === undefined ? undefined : num('card-gib'),
    imagesPerSecond: rate === undefined ? undefined : num('images-per-second'),
    epochs: num('epochs', 20),
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
  if (r.hours !== null) console.log(`${num('epochs', 20)} epochs of WebFace42M (${WEBFACE42M_IMAGES.toLocaleString('en')} images) at ${rate} images/s: ${r.hours.toFixed(1)} hours (${(r.hours / 24).toFixed(1)} days)`);
  return r.fits === false ? 1 : 0;
}
