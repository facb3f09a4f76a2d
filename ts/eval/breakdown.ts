// The MFR score broken down by the masks the probes got: per synthesizer and per mask kind,
// each group's genuine pairs accepted at the thresholds of the whole masked protocol (TAR),
// and its own impostor pairs accepted there (its FAR), counted exactly in Rust. The masks are
// those drawn on the fly (`decodeMaskedFaces`) or those a sidecar of `maskfr mask` lists.

import { native } from '../native';
import { OperatingPoint } from './one-to-one';

/** What one image got: a synthesizer (`template`, `renderer`) and a kind, or nulls when it
 *  was left unmasked. */
export interface DrawnMask {
  synthesizer: string | null;
  kind: string | null;
}

/** The kinds each synthesizer draws (maskfr_masks::MaskInfo::kind; the sidecar's values). */
export const MASK_KINDS: Readonly<Record<string, readonly string[]>> = { template: ['surgical', 'n95', 'kn95', 'cloth', 'gas'], renderer: ['full', 'half'] };

/** Groups with fewer genuine pairs than this are shown, flagged: their TAR moves by ≥ 10
 *  points with one pair. */
export const MIN_GENUINE = 10;

export const BREAKDOWN_DEFINITION =
  'Each group holds the masked probes whose mask came from that synthesizer (or is of that kind), with all their pairs of the MFR protocol. ' +
  "The thresholds are the whole MFR protocol's, one per FMR level (set by all its impostor pairs); a group's TAR is the share of its genuine pairs scoring at or above a threshold, " +
  'its FAR the share of its own impostor pairs doing so: an observed rate, not a target, so a group can lie above or below the level. ' +
  `Groups with fewer than ${MIN_GENUINE} genuine pairs are flagged (*): their TAR rests on too few pairs.`;

export interface GroupLevel {
  fmr: number;
  /** The whole protocol's threshold at this level (scores ≥ it match). */
  threshold: number;
  /** Whether the level is measurable on the whole protocol (≥ 1 false match allowed). */
  measurable: boolean;
  tar: number;
  genuineAccepted: number;
  /** The group's own impostor pairs accepted, and their share (null: the group has none). */
  falseMatches: number;
  far: number | null;
}

export interface BreakdownGroup {
  by: 'synthesizer' | 'kind';
  name: string;
  probes: number;
  genuine: number;
  impostors: number;
  levels: GroupLevel[];
  /** Fewer than MIN_GENUINE genuine pairs. */
  few: boolean;
}

export interface MaskBreakdown {
  /** Where the masks came from: `on the fly` or the sidecar's path. */
  source: string;
  /** Probes without a mask (a sidecar's unmasked images are the gallery, never probes). */
  unmasked: number;
  groups: BreakdownGroup[];
  definition: string;
}

/** The order groups are shown in: MASK_KINDS' (template first; its kinds as listed). */
const ORDER = Object.entries(MASK_KINDS).flatMap(([s, kinds]) => kinds.map((k) => `${s}\u0000${k}`));

/** The probes' leaf groups: each distinct (synthesizer, kind), in ORDER; `index[i]` is probe
 *  i's, or 2³² − 1 (in no group) when it is unmasked. */
export function leafGroups(masks: readonly DrawnMask[]): { leaves: { synthesizer: string; kind: string }[]; index: Uint32Array } {
  const rank = (n: string) => (ORDER.includes(n) ? ORDER.indexOf(n) : ORDER.length);
  const names = [...new Set(masks.filter((m) => m.synthesizer !== null).map((m) => `${m.synthesizer}\u0000${m.kind}`))].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1));
  const at = new Map(names.map((n, i) => [n, i]));
  const index = Uint32Array.from(masks, (m) => (m.synthesizer === null ? 0xffffffff : at.get(`${m.synthesizer}\u0000${m.kind}`)!));
  return { leaves: names.map((n) => ({ synthesizer: n.split('\u0000')[0], kind: n.split('\u0000')[1] })), index };
}

export interface LeafCounts {
  genuine: number;
  impostors: number;
  genuineAccepted: number[];
  impostorsAccepted: number[];
}

/** Groups by synthesizer, then by kind, from per-leaf counts at `levels`' thresholds. */
export function groupCounts(leaves: { synthesizer: string; kind: string }[], probes: number[], counts: LeafCounts[], levels: readonly OperatingPoint[]): BreakdownGroup[] {
  const roll = (by: 'synthesizer' | 'kind'): BreakdownGroup[] => {
    const names = [...new Set(leaves.map((l) => l[by]))];
    return names.map((name) => {
      const mine = leaves.flatMap((l, i) => (l[by] === name ? [i] : []));
      const sum = (f: (c: LeafCounts) => number) => mine.reduce((s, i) => s + f(counts[i]), 0);
      const [genuine, impostors] = [sum((c) => c.genuine), sum((c) => c.impostors)];
      return {
        by,
        name,
        probes: mine.reduce((s, i) => s + probes[i], 0),
        genuine,
        impostors,
        few: genuine < MIN_GENUINE,
        levels: levels.map((l, k) => {
          const [g, f] = [sum((c) => c.genuineAccepted[k]), sum((c) => c.impostorsAccepted[k])];
          return { fmr: l.fmr, threshold: l.threshold, measurable: l.falseMatchesAllowed >= 1, tar: genuine > 0 ? g / genuine : 0, genuineAccepted: g, falseMatches: f, far: impostors > 0 ? f / impostors : null };
        }),
      };
    });
  };
  return [...roll('synthesizer'), ...roll('kind')];
}

/** The breakdown of a cross protocol (probe rows against gallery rows, as `verifyCross`
 *  scored them) at its operating points `levels`. */
export function crossBreakdown(
  source: string,
  masks: readonly DrawnMask[],
  cross: { probe: Float32Array; gallery: Float32Array; labels: Int32Array; galleryLabels?: Int32Array; dim: number; paired: boolean },
  levels: readonly OperatingPoint[],
): MaskBreakdown {
  const { leaves, index } = leafGroups(masks);
  const counts = native.crossGroupCounts(cross.probe, cross.gallery, cross.labels, cross.dim, cross.paired, index, leaves.length, levels.map((l) => l.threshold), cross.galleryLabels);
  const probes = leaves.map((_, g) => index.reduce((s, v) => s + (v === g ? 1 : 0), 0));
  return { source, unmasked: masks.filter((m) => m.synthesizer === null).length, groups: groupCounts(leaves, probes, counts, levels), definition: BREAKDOWN_DEFINITION };
}

const pct = (v: number) => `${(100 * v).toFixed(2)}%`;

/** Plain-text table: TAR at every level, FAR at `farAt`. */
export function breakdownLines(b: MaskBreakdown, farAt: number): string[] {
  const levels = b.groups[0]?.levels ?? [];
  const k = levels.findIndex((l) => Math.abs(l.fmr - farAt) <= 1e-12 * farAt);
  const head = `  ${'group'.padEnd(22)} ${'probes'.padStart(7)} ${'genuine'.padStart(8)} ${'impostors'.padStart(10)}  ${levels.map((l) => `TAR@${l.fmr.toExponential(0)}${l.measurable ? '' : '?'}`.padStart(10)).join(' ')}  FAR@${farAt.toExponential(0)}`;
  const rows = b.groups.map((g) => {
    const far = k < 0 || g.levels[k].far === null ? 'n/a' : `${pct(g.levels[k].far!)} (${g.levels[k].falseMatches})`;
    return `  ${`${g.few ? '*' : ' '}${g.by === 'kind' ? 'kind ' : ''}${g.name}`.padEnd(22)} ${String(g.probes).padStart(7)} ${String(g.genuine).padStart(8)} ${String(g.impostors).padStart(10)}  ${g.levels.map((l) => pct(l.tar).padStart(10)).join(' ')}  ${far}`;
  });
  const notes = wrap(`${b.definition}${levels.some((l) => !l.measurable) ? ' A level marked ? is not measurable on the whole set: under one false match allowed.' : ''}`);
  return [`MFR by mask (masks ${b.source}${b.unmasked > 0 ? `; ${b.unmasked} probes unmasked, in no group` : ''}):`, head, ...rows, ...notes];
}

/** The HTML section: one row per group, TAR and the group's FAR at each level. */
export function breakdownHtml(b: MaskBreakdown): string {
  const levels = b.groups[0]?.levels ?? [];
  const heads = levels.map((l) => `<th${l.measurable ? '' : ' class="few" title="not measurable on the whole set"'}>TAR / FAR @ ${l.fmr.toExponential(0)}</th>`).join('');
  const rows = b.groups.map((g) => {
    const cells = g.levels.map((l) => `<td${l.measurable ? '' : ' class="few"'}>${pct(l.tar)} / ${l.far === null ? 'n/a' : pct(l.far)}</td>`).join('');
    const flag = g.few ? ` class="few" title="fewer than ${MIN_GENUINE} genuine pairs"` : '';
    return `<tr${flag}><td style="text-align:left">${g.few ? '* ' : ''}${g.by}: ${g.name}</td><td>${g.probes.toLocaleString('en')}</td><td>${g.genuine.toLocaleString('en')}</td><td>${g.impostors.toLocaleString('en')}</td>${cells}</tr>`;
  });
  return `<h2>MFR by mask</h2><p>Masks ${b.source}${b.unmasked > 0 ? `; ${b.unmasked.toLocaleString('en')} probes unmasked, in no group` : ''}. ${b.definition}</p>
<table><tr><th>group</th><th>masked probes</th><th>genuine pairs</th><th>impostor pairs</th>${heads}</tr>${rows.join('')}</table>`;
}

/** A `.bin` pair set's breakdown: its 10-fold decisions grouped by the pairs' masks. */
export interface PairGroup {
  by: 'synthesizer' | 'kind' | 'no mask';
  name: string;
  pairs: number;
  genuine: number;
  impostors: number;
  accuracy: number;
  tar: number;
  /** Null: the group has no impostor pairs. */
  far: number | null;
  few: boolean;
}

export interface PairBreakdown {
  source: string;
  groups: PairGroup[];
  definition: string;
}

export const PAIR_BREAKDOWN_DEFINITION =
  "Pairs grouped by the masks on their two images (a pair whose images got different masks counts in both groups; 'no mask': neither image masked). " +
  "Each pair is decided by its own test fold's threshold of the 10-fold protocol (chosen on the other nine folds, over all pairs); a group's accuracy, TAR (its genuine pairs accepted) and FAR (its impostor pairs accepted) are over its own pairs. " +
  `Groups with fewer than ${MIN_GENUINE} genuine pairs are flagged (*).`;

/** `masks[i]` is image i's (pair k: images 2k and 2k + 1); `accepted[k]`: pair k was called
 *  the same person. */
export function pairBreakdown(source: string, masks: readonly DrawnMask[], issame: readonly boolean[], accepted: readonly boolean[]): PairBreakdown {
  if (masks.length !== 2 * issame.length || accepted.length !== issame.length) throw new Error(`pairBreakdown: ${masks.length} masks and ${accepted.length} decisions for ${issame.length} pairs`);
  const members = new Map<string, { by: PairGroup['by']; name: string; pairs: number[] }>();
  const join = (by: PairGroup['by'], name: string, k: number) => {
    const id = `${by}\u0000${name}`;
    const g = members.get(id) ?? { by, name, pairs: [] };
    if (g.pairs[g.pairs.length - 1] !== k) g.pairs.push(k);
    members.set(id, g);
  };
  issame.forEach((_, k) => {
    const two = [masks[2 * k], masks[2 * k + 1]].filter((m) => m.synthesizer !== null);
    if (two.length === 0) join('no mask', 'no mask', k);
    two.forEach((m) => join('synthesizer', m.synthesizer!, k));
    two.forEach((m) => join('kind', m.kind!, k));
  });
  // Shown in the MFR breakdown's order: MASK_KINDS' synthesizers, then its kinds.
  const order: PairGroup['by'][] = ['synthesizer', 'kind', 'no mask'];
  const names = [...Object.keys(MASK_KINDS), ...Object.values(MASK_KINDS).flat()];
  const known = (g: { name: string }) => (names.includes(g.name) ? names.indexOf(g.name) : names.length);
  const groups = [...members.values()]
    .sort((a, b) => order.indexOf(a.by) - order.indexOf(b.by) || known(a) - known(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map(({ by, name, pairs }) => {
      const genuine = pairs.filter((k) => issame[k]);
      const impostors = pairs.filter((k) => !issame[k]);
      const right = pairs.filter((k) => accepted[k] === issame[k]).length;
      const tar = genuine.filter((k) => accepted[k]).length / Math.max(1, genuine.length);
      const far = impostors.length > 0 ? impostors.filter((k) => accepted[k]).length / impostors.length : null;
      return { by, name, pairs: pairs.length, genuine: genuine.length, impostors: impostors.length, accuracy: right / pairs.length, tar, far, few: genuine.length < MIN_GENUINE };
    });
  return { source, groups, definition: PAIR_BREAKDOWN_DEFINITION };
}

export function pairBreakdownLines(b: PairBreakdown): string[] {
  const head = `  ${'group'.padEnd(22)} ${'pairs'.padStart(6)} ${'genuine'.padStart(8)} ${'impostors'.padStart(10)} ${'accuracy'.padStart(9)} ${'TAR'.padStart(8)} ${'FAR'.padStart(8)}`;
  const rows = b.groups.map(
    (g) =>
      `  ${`${g.few ? '*' : ' '}${g.by === 'kind' ? 'kind ' : ''}${g.name}`.padEnd(22)} ${String(g.pairs).padStart(6)} ${String(g.genuine).padStart(8)} ${String(g.impostors).padStart(10)} ${pct(g.accuracy).padStart(9)} ${pct(g.tar).padStart(8)} ${(g.far === null ? 'n/a' : pct(g.far)).padStart(8)}`,
  );
  return [`by mask (masks from ${b.source}):`, head, ...rows, ...wrap(b.definition)];
}

/** A note as indented lines of at most `width` characters. */
function wrap(text: string, width = 100): string[] {
  const lines: string[] = [];
  for (const word of text.split(' ')) {
    if (lines.length > 0 && lines[lines.length - 1].length + word.length < width) lines[lines.length - 1] += ` ${word}`;
    else lines.push(`  ${word}`);
  }
  return lines;
}
