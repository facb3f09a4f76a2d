import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { main } from '../ts/cli/main';
import { native } from '../ts/native';
import { createModel, packRecordDataset, readVerificationBin, RecordDataset, saveCheckpoint, syntheticFace, writeSyntheticDataset } from '../ts';
import { drawMask, synthesizeMask } from '../ts/data/masks';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-mask-tool-'));

/** Runs `maskfr ARGS` in this process: its exit code and what it printed (console.log is
 *  swapped meanwhile, so the tests that call it run serially). */
async function maskfr(...args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(' '));
  try {
    return { code: await main(args), out: lines.join('\n') };
  } finally {
    console.log = log;
  }
}

function sidecar(out: string): { header: Record<string, unknown>; lines: Record<string, unknown>[] } {
  const [first, ...rest] = fs.readFileSync(`${out}.masks.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  return { header: first, lines: rest };
}

test.serial('maskfr mask on a .bin: the pairs kept, the kinds asked for drawn, the sidecar says which', async (t) => {
  const dir = tmp();
  const { bin } = writeSyntheticDataset(dir, { identities: 2, perIdentity: 1, heldOut: 3, pairs: 8, seed: 4, quality: 90 });
  const out = path.join(dir, 'masked.bin');
  const r = await maskfr('mask', bin, out, '--kinds', 'surgical,n95,full', '--colors', 'white,#3366cc', '--seed', '7', '--threads', '2');
  t.is(r.code, 0);
  t.regex(r.out, new RegExp(`wrote ${out}: 16 images, 16 masked \\((template|renderer) .*\\); which mask each got: ${out}\\.masks\\.jsonl`));
  const [a, b] = [readVerificationBin(bin), readVerificationBin(out)];
  t.deepEqual(b.issame, a.issame);
  t.is(b.images.length, a.images.length);
  const { header, lines } = sidecar(out);
  t.like(header, { maskfr_masks: 1, input: bin, seed: 7, probability: 1, template_share: 0.5, synthesizer: 'both', kinds: ['surgical', 'n95', 'full'], colors: ['white', '#3366cc'] });
  t.deepEqual(lines.map((l) => l.key), [...Array(16).keys()]);
  for (const [i, l] of lines.entries()) {
    t.true(['surgical', 'n95', 'full'].includes(l.kind as string), `image ${i}: ${JSON.stringify(l)}`);
    t.is(l.synthesizer, l.kind === 'full' ? 'renderer' : 'template');
    t.regex(l.color as string, /^#[0-9a-f]{6}$/);
    t.notDeepEqual(b.images[i], a.images[i]);
  }
  // Existing OUT: refused without --overwrite, replaced with it.
  await t.throwsAsync(maskfr('mask', bin, out), { message: /masked\.bin exists \(--overwrite replaces it\)/ });
  t.is((await maskfr('mask', bin, out, '--overwrite', '--probability', '0')).code, 0);
  t.deepEqual(readVerificationBin(out).images, a.images, 'probability 0: every image copied unchanged');
  t.true(sidecar(out).lines.every((l) => l.synthesizer === null));
});

test.serial('maskfr mask on a .rec keeps labels, keys and landmarks; on a folder, names and other files', async (t) => {
  const dir = tmp();
  const faces = path.join(dir, 'faces');
  const points: Record<string, number[][]> = {};
  for (let k = 0; k < 6; k++) {
    const rel = `id${k % 2}/${k}.png`;
    fs.mkdirSync(path.join(faces, `id${k % 2}`), { recursive: true });
    fs.writeFileSync(path.join(faces, rel), native.encodePng(Buffer.from(syntheticFace(2, k % 2, k)), 112, 112));
    // The template moved a little per face: landmarks that are not the default.
    points[rel] = [[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]].map(([x, y]) => [x + k - 3, y + 0.5 * k]);
  }
  fs.writeFileSync(path.join(faces, 'README.txt'), 'six faces\n');
  const lm = path.join(dir, 'landmarks.json');
  fs.writeFileSync(lm, JSON.stringify(points));
  const rec = path.join(dir, 'train.rec');
  await packRecordDataset({ folder: faces }, rec, { landmarks: lm, threads: 1 });
  const outRec = path.join(dir, 'masked.rec');
  const r = await maskfr('mask', rec, outRec, '--probability', '0.5', '--seed', '3', '--synthesizer', 'template');
  t.is(r.code, 0);
  const [a, b] = [RecordDataset.open(rec), RecordDataset.open(outRec)];
  t.is(b.length, a.length);
  const { lines } = sidecar(outRec);
  for (let i = 0; i < a.length; i++) {
    const [x, y] = [a.sample(i), b.sample(i)];
    t.deepEqual([y.key, y.label, y.landmarks], [x.key, x.label, x.landmarks]);
    t.is(lines[i].key, x.key);
    t.is(x.body.equals(y.body), lines[i].synthesizer === null, `image ${i}`);
  }
  const masked = lines.filter((l) => l.synthesizer !== null).length;
  t.regex(r.out, new RegExp(`6 images, ${masked} masked.*; ${a.identities!.length + 1} records that are not images copied`));

  const outDir = path.join(dir, 'masked');
  t.is((await maskfr('mask', faces, outDir, '--threads', '1')).code, 0);
  t.is(fs.readFileSync(path.join(outDir, 'README.txt'), 'utf8'), 'six faces\n');
  t.deepEqual(sidecar(outDir).lines.map((l) => l.key), Object.keys(points).sort());
  for (const rel of Object.keys(points)) t.false(fs.readFileSync(path.join(outDir, rel)).equals(fs.readFileSync(path.join(faces, rel))), rel);
  // With the folder's landmarks file: the same masks, placed on each face instead.
  const onFaces = path.join(dir, 'masked-on-faces');
  t.is((await maskfr('mask', faces, onFaces, '--landmarks', lm)).code, 0);
  t.is(sidecar(onFaces).header.landmarks, lm);
  t.deepEqual(sidecar(onFaces).lines, sidecar(outDir).lines);
  for (const rel of Object.keys(points)) t.false(fs.readFileSync(path.join(onFaces, rel)).equals(fs.readFileSync(path.join(outDir, rel))), rel);
  await t.throwsAsync(maskfr('mask', rec, path.join(dir, 'x.rec'), '--landmarks', lm), { message: /landmarks from a file are for a folder input \(a \.rec brings its records' own\)/ });
  await t.throwsAsync(maskfr('mask', faces, path.join(faces, 'inside')), { message: /is \(inside\) the input/ });
});

test.serial('maskfr mask refuses unknown names listing the valid ones, and a mismatched output', async (t) => {
  const dir = tmp();
  const { bin } = writeSyntheticDataset(dir, { identities: 1, perIdentity: 1, heldOut: 2, pairs: 1, seed: 1, quality: 90 });
  const out = path.join(dir, 'm.bin');
  await t.throwsAsync(maskfr('mask', bin, out, '--kinds', 'surgical,bandana'), { message: /unknown kind 'bandana' \(valid: surgical, n95, kn95, cloth, gas, full, half\)/ });
  await t.throwsAsync(maskfr('mask', bin, out, '--colors', 'mauve'), { message: /unknown colour 'mauve' \(valid: white, blue, .*, or #rrggbb\)/ });
  await t.throwsAsync(maskfr('mask', bin, out, '--synthesizer', 'mtcnn'), { message: /--synthesizer must be template, renderer or both, got mtcnn/ });
  await t.throwsAsync(maskfr('mask', bin, out, '--probability', '1.5'), { message: /--probability must be a share in \[0, 1\], got 1\.5/ });
  await t.throwsAsync(maskfr('mask', bin, path.join(dir, 'm.rec')), { message: /is a \.bin, so the output must be too/ });
  t.false(fs.existsSync(out));
});

test.serial('a .rec masked by maskfr mask is scored by maskfr eval through its sidecar: masked probes against its unmasked images, broken down as the sidecar says', async (t) => {
  const dir = tmp();
  const { rec } = writeSyntheticDataset(dir, { identities: 6, perIdentity: 5, heldOut: 2, pairs: 1, seed: 6, quality: 90 });
  const out = path.join(dir, 'masked.rec');
  t.is((await maskfr('mask', rec, out, '--probability', '0.6', '--kinds', 'surgical,gas,full,half', '--seed', '11')).code, 0);
  const { lines } = sidecar(out);
  const count = (f: (l: Record<string, unknown>) => boolean) => lines.filter(f).length;
  const masked = count((l) => l.synthesizer !== null);
  t.true(masked > 5 && masked < 30, `${masked} of 30 masked`);
  const weights = path.join(dir, 'tiny.safetensors');
  const m = createModel('tiny');
  saveCheckpoint(m, weights);
  m.dispose();
  const r = await maskfr('eval', '--model', 'tiny', '--weights', weights, '--data', out);
  t.is(r.code, 0, r.out);
  t.regex(r.out, new RegExp(`pre-masked per ${out.replace(/[.]/g, '\\.')}\\.masks\\.jsonl: ${masked} masked probes, ${30 - masked} unmasked gallery images`));
  // Every group the sidecar holds is a row with its probe count; the synthesizers add up.
  const row = (name: string) => r.out.match(new RegExp(`\\n +\\*?${name} +(\\d+) `))?.[1];
  // A group with no masked probe has no row.
  for (const s of ['template', 'renderer']) t.is(row(s), count((l) => l.synthesizer === s) > 0 ? String(count((l) => l.synthesizer === s)) : undefined, s);
  for (const k of ['surgical', 'gas', 'full', 'half']) {
    const n = count((l) => l.kind === k);
    t.is(row(`kind ${k}`), n > 0 ? String(n) : undefined, k);
  }
});

test('drawMask: the kind asked for is drawn and reported; synthesizeMask is its image', (t) => {
  const face = Buffer.from(syntheticFace(3, 0, 0));
  const d = drawMask(face, 112, 112, { synthesizer: 'template', kinds: ['kn95'], seed: 2 });
  t.like(d.mask, { synthesizer: 'template', kind: 'kn95' });
  t.deepEqual(synthesizeMask(face, 112, 112, { synthesizer: 'template', kinds: ['kn95'], seed: 2 }), d.image);
  t.is(drawMask(face, 112, 112, { synthesizer: 'renderer', half: true, seed: 2 }).mask.kind, 'half');
  t.throws(() => drawMask(face, 112, 112, { patterns: ['paisley'] }), { message: /unknown pattern 'paisley' \(valid: solid, stripes/ });
  t.throws(() => drawMask(face, 112, 112, { half: true }), { message: /half is the renderer's option/ });
});
