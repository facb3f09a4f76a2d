// `maskfr align`: faces cropped and aligned from five landmarks as insightface's `norm_crop`
// does (ArcFace's 112×112 template), for photographs that are not aligned yet.

import { alignFiles, AlignWarp, DEFAULT_ALIGN_WARP } from '../data/align';
import { Command, integerOption, Parsed } from './args';

/** --warp's help, for align and pack --align. */
export const WARP_HELP =
  "whose pixels the crops reproduce: 'float' OpenCV 5.x's warpAffine (what pip install insightface brings today), 'fixed' OpenCV 4.x's fixed-point one (the crops insightface's published models were trained and scored on); they differ by up to 5 levels on ~9% of the values";

/** --warp's value, checked. */
export function warpOption(p: Parsed, command: string): AlignWarp {
  const w = p.options.get('warp') ?? DEFAULT_ALIGN_WARP;
  if (w !== 'float' && w !== 'fixed') throw new Error(`${command}: --warp must be float (OpenCV 5.x) or fixed (OpenCV 4.x), got ${w}`);
  return w;
}

export const align: Command = {
  summary: "crop faces to ArcFace's 112x112 template from five landmarks (insightface's norm_crop, to the bit of OpenCV 5.x's or 4.x's warp)",
  usage: 'maskfr align IN_DIR|IMAGE --landmarks FILE --out DIR [options]',
  options: [
    { name: 'landmarks', value: 'FILE', required: true, help: "each image's five landmarks (eyes, nose tip, mouth corners): .json {name: [[x,y]×5]}, .csv name,x1,y1,…,x5,y5, or insightface's 'name x1 y1 … x5 y5 score' lines (IJB's *_name_5pts_score.txt)" },
    { name: 'out', value: 'DIR', required: true, help: "where the crops go, under each image's path relative to IN_DIR" },
    { name: 'size', value: 'N', default: '112', help: 'the crop side: a multiple of 112 or 128 (insightface templates)' },
    { name: 'format', value: 'png|jpg', help: 'the crops\' format', defaultHelp: "each image's own" },
    { name: 'quality', value: 'Q', default: '95', help: 'JPEG quality' },
    { name: 'warp', value: 'float|fixed', default: DEFAULT_ALIGN_WARP, help: WARP_HELP },
  ],
  example: 'maskfr align ijb/loose_crop --landmarks ijb/meta/ijbc_name_5pts_score.txt --out ijb/aligned',
  run: alignCommand,
};

function alignCommand(p: Parsed): number {
  const [input] = p.positional;
  if (input === undefined || p.positional.length > 1) throw new Error(`align: usage: ${align.usage}`);
  const format = p.options.get('format');
  if (format !== undefined && format !== 'png' && format !== 'jpg') throw new Error(`align: --format must be png or jpg, got ${format}`);
  const t = performance.now();
  const r = alignFiles(input, p.options.get('landmarks') as string, p.options.get('out') as string, {
    size: integerOption(p, 'size', 1),
    format,
    quality: integerOption(p, 'quality', 1),
    warp: warpOption(p, 'align'),
  });
  const secs = (performance.now() - t) / 1000;
  console.log(`wrote ${r.written.length} aligned faces to ${p.options.get('out')} in ${secs.toFixed(1)} s (${(r.written.length / secs).toFixed(0)} images/s)`);
  return 0;
}
