// `maskfr mask IN OUT`: a masked copy of a dataset — an image folder, a .rec or a verification
// .bin — of the same kind, for masked verification sets and masked training sets, with the
// choices MaskTheFace's command line offers, and a sidecar OUT.masks.jsonl of which mask each
// image got (reports break results down by it).

import os from 'node:os';
import { native } from '../native';
import { MAX_BAD_SHARE } from '../data/recordio';
import { maskDataset, MaskDatasetResult } from '../data/mask-dataset';
import { Command, integerOption, Parsed } from './args';
import { progressBar } from './progress-bar';

const NAMES = native.maskChoiceNames();
const SHAPES = NAMES.kinds.filter((k) => k !== 'full' && k !== 'half');

const list = (v: string | undefined): string[] | undefined => (v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter((s) => s !== ''));

export const mask: Command = {
  summary: 'write a masked copy of an image folder, a .rec or a .bin (same kind, names, keys, headers and pairs), with OUT.masks.jsonl saying which mask each image got',
  usage: 'maskfr mask IN OUT [options]',
  options: [
    { name: 'synthesizer', value: 'template|renderer|both', default: 'both', help: 'which synthesizers draw the masks' },
    { name: 'kinds', value: 'K,K…', help: `kinds drawn from: ${SHAPES.join(', ')} (template); full, half (renderer)`, defaultHelp: 'all' },
    { name: 'colors', value: 'C,C…', help: `colours drawn from: ${NAMES.colors.join(', ')}, or #rrggbb`, defaultHelp: "the synthesizers' own" },
    { name: 'patterns', value: 'P,P…', help: `the template's fabric patterns drawn from: ${NAMES.patterns.join(', ')}`, defaultHelp: 'all' },
    { name: 'textures', value: 'DIR', help: 'a folder of fabric images (PNG/JPEG) the template prints' },
    { name: 'landmarks', value: 'FILE', help: "with a folder IN: each image's five landmarks (as pack --landmarks reads them), masks placed on each face; an image without any is bad (a .rec brings its records' own)", defaultHelp: 'the aligned template' },
    { name: 'probability', value: 'P', default: '1', help: 'share of the images masked (the others are copied unchanged)' },
    { name: 'template-share', value: 'S', default: '0.5', help: "with --synthesizer both: the template's share of the masked images" },
    { name: 'seed', value: 'S', default: '0', help: 'image i gets the mask of seed mix(S, i), whatever the thread count' },
    { name: 'quality', value: 'Q', default: '95', help: 'JPEG quality of re-encoded JPEGs (PNGs stay lossless)' },
    { name: 'max-bad', value: 'SHARE', default: String(MAX_BAD_SHARE), help: 'share of bad images copied unmasked and listed in the bad list; one more refuses the run' },
    { name: 'threads', value: 'N', default: String(os.availableParallelism()), help: 'threads decoding, masking and encoding' },
    { name: 'overwrite', help: 'replace OUT when it exists' },
    { name: 'progress', help: 'a progress bar on stderr also when it is not a terminal (a line every 10 s)' },
  ],
  example: 'maskfr mask data/lfw.bin data/lfw-masked.bin --kinds surgical,n95,full --seed 1',
  run: maskCommand,
};

function share(p: Parsed, name: string): number {
  const v = Number(p.options.get(name));
  if (!(v >= 0 && v <= 1)) throw new Error(`mask: --${name} must be a share in [0, 1], got ${p.options.get(name)}`);
  return v;
}

/** `12 images: 9 masked (template surgical 4, renderer full 5), …`. */
export function maskSummary(out: string, r: MaskDatasetResult): string {
  const kinds = r.byMask.map((m) => `${m.synthesizer} ${m.kind} ${m.count}`).join(', ');
  const copied = r.copied > 0 ? `; ${r.copied} ${r.kind === 'rec' ? 'records that are not images' : 'other files'} copied` : '';
  const bad = r.bad > 0 ? `; ${r.bad} bad image${r.bad > 1 ? 's' : ''} copied unmasked, listed in ${r.badList}` : '';
  return `wrote ${out}: ${r.images} images, ${r.masked} masked${kinds && ` (${kinds})`}${copied}${bad}; which mask each got: ${r.sidecar}`;
}

async function maskCommand(p: Parsed): Promise<number> {
  const [input, out] = p.positional;
  if (input === undefined || out === undefined || p.positional.length > 2) throw new Error(`mask: usage: ${mask.usage}`);
  const synthesizer = p.options.get('synthesizer');
  if (synthesizer !== 'template' && synthesizer !== 'renderer' && synthesizer !== 'both') throw new Error(`mask: --synthesizer must be template, renderer or both, got ${synthesizer}`);
  const quality = integerOption(p, 'quality', 1);
  if (quality > 100) throw new Error(`mask: --quality must be in [1, 100], got ${quality}`);
  const r = await maskDataset(input, out, {
    synthesizer,
    kinds: list(p.options.get('kinds')),
    colors: list(p.options.get('colors')),
    patterns: list(p.options.get('patterns')),
    textures: p.options.get('textures'),
    landmarks: p.options.get('landmarks'),
    probability: share(p, 'probability'),
    templateShare: share(p, 'template-share'),
    seed: integerOption(p, 'seed', 0),
    quality,
    maxBad: share(p, 'max-bad'),
    threads: integerOption(p, 'threads', 1),
    overwrite: p.flags.has('overwrite'),
    onProgress: progressBar('mask', p.flags.has('progress')),
  });
  console.log(maskSummary(out, r));
  return 0;
}
