import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONFIG_DEFAULTS, Loader, MASK_DEFAULTS, memoryStats, writeSyntheticDataset, readImageFolder, syntheticFace } from '../ts';
import { native } from '../ts/native';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-loader-'));
const { rec } = writeSyntheticDataset(dir, { identities: 5, perIdentity: 4, heldOut: 2, pairs: 2, seed: 3, quality: 90 });

async function collect(l: Loader, epoch: number): Promise<[number[], number[]][]> {
  const out: [number[], number[]][] = [];
  for await (const b of l.epoch(epoch)) {
    out.push([[...b.images.toFloat32Array().subarray(0, 50)], [...b.labels]]);
    b.images.dispose();
  }
  return out;
}

test('batches are normalised CHW tensors with labels, the same for the same seed', async (t) => {
  const opts = { batch: 6, seed: 5, threads: 2 };
  const a = Loader.fromRecord(rec, opts);
  const first = a.epoch(0);
  const { value } = await first.next();
  t.deepEqual([...value!.images.shape], [6, 3, 112, 112]);
  t.is(value!.labels.length, 6);
  const px = value!.images.toFloat32Array();
  t.true(px.every((v: number) => v >= -1 && v <= 1));
  value!.images.dispose();
  await first.return(undefined);
  const runA = await collect(Loader.fromRecord(rec, { ...opts, threads: 1 }), 0);
  const runB = await collect(Loader.fromRecord(rec, { ...opts, threads: 3 }), 0);
  t.is(runA.length, 3, '20 images, batch 6: three batches, the partial one dropped');
  t.deepEqual(runA, runB);
  t.notDeepEqual(await collect(Loader.fromRecord(rec, opts), 1), runA, 'another epoch reshuffles');
});

test('two ranks see disjoint halves of an epoch', async (t) => {
  const labels = async (rank: number) =>
    (await collect(Loader.fromRecord(rec, { batch: 5, seed: 1, rank, world: 2, flip: false }), 0)).flatMap(([, l]) => l);
  const [r0, r1] = [await labels(0), await labels(1)];
  t.is(r0.length + r1.length, 20);
  const counts = new Map<number, number>();
  for (const l of [...r0, ...r1]) counts.set(l, (counts.get(l) ?? 0) + 1);
  t.deepEqual([...counts.values()], [4, 4, 4, 4, 4], 'every image once');
});

test('an image folder loads; an empty identity folder or a corrupt file is named', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-folder-'));
  for (const [who, n] of [['alice', 2], ['bob', 3]] as const) {
    fs.mkdirSync(path.join(root, who));
    for (let i = 0; i < n; i++) {
      const rgb = syntheticFace(9, who.length, i);
      fs.writeFileSync(path.join(root, who, `${i}.jpg`), native.encodeJpeg(Buffer.from(rgb), 112, 112, 90));
    }
  }
  const folder = readImageFolder(root);
  t.deepEqual(Array.from({ length: folder.length }, (_, i) => folder.sample(i).label), [0, 0, 1, 1, 1]);
  const batches = await collect(Loader.fromFolder(root, { batch: 5, shuffle: false, flip: false }), 0);
  t.deepEqual(batches[0][1], [0, 0, 1, 1, 1]);
  fs.writeFileSync(path.join(root, 'bob', '9.jpg'), Buffer.from('not a jpeg at all'));
  const bad = Loader.fromFolder(root, { batch: 6, shuffle: false });
  await t.throwsAsync(collect(bad, 0), { message: /bob\/9\.jpg: (corrupt image|\d+ bytes that are neither JPEG nor PNG)/ });
  // Batches of 3: [alice 0, alice 1, bob 0], [bob 1, bob 2, bob 9]; bob/9's place goes to the
  // next readable sample after that batch (wrapping: alice 0), so the batch stays full.
  const skipping = Loader.fromFolder(root, { batch: 3, shuffle: false, flip: false, skipCorrupt: true, maxCorruptShare: 0.2 });
  const got = await collect(skipping, 0);
  t.deepEqual(got.map(([, l]) => l), [[0, 0, 1], [1, 1, 0]]);
  t.is(skipping.skipped.epoch, 0);
  t.is(skipping.skipped.count, 1);
  t.regex(skipping.skipped.first[0], /bob\/9\.jpg: (corrupt image|\d+ bytes that are neither JPEG nor PNG)/);
  // 1 of 6 is more than the default 1%: the epoch stops, naming the folder, the count and the share.
  await t.throwsAsync(collect(Loader.fromFolder(root, { batch: 3, shuffle: false, skipCorrupt: true }), 0), {
    message: /maskfr-folder-\w+: 1 of the 6 samples of epoch 0 on this rank are corrupt \(16\.67%\), more than maxCorruptShare 0\.01 allows \(1\.00%\); the first: .*bob\/9\.jpg/,
  });
  // Every image corrupt: an error with the count, never an empty batch.
  const all = readImageFolder(root);
  for (let i = 0; i < all.length; i++) fs.writeFileSync(all.path(i), 'not an image');
  await t.throwsAsync(collect(Loader.fromFolder(root, { batch: 3, skipCorrupt: true, maxCorruptShare: 0.5 }), 0), {
    message: /4 of the 6 samples of epoch 0 on this rank are corrupt \(66\.67%\), more than maxCorruptShare 0\.5 allows/,
  });
  fs.mkdirSync(path.join(root, 'carol'));
  t.throws(() => readImageFolder(root), { message: /carol: identity folder without images/ });
});

test('the loader does not leak native memory across an epoch', async (t) => {
  const before = memoryStats().liveBytes;
  await collect(Loader.fromRecord(rec, { batch: 4 }), 0);
  t.is(memoryStats().liveBytes, before);
});

test('the loader masks a seeded share of samples in its workers and says which', async (t) => {
  const run = async (p: number) => {
    const out: { masked: boolean[]; mouth: number[] }[] = [];
    for await (const b of Loader.fromRecord(rec, { batch: 10, seed: 4, flip: false, maskProbability: p, shuffle: false }).epoch(0)) {
      const px = b.images.toFloat32Array();
      // the red channel at the mouth's centre (x 56, y 92) of each sample
      out.push({ masked: b.masked, mouth: b.masked.map((_, i) => px[i * 3 * 112 * 112 + 92 * 112 + 56]) });
      b.images.dispose();
    }
    return out;
  };
  const none = await run(0);
  t.true(none.every((b) => b.masked.every((m) => !m)));
  const half = await run(0.5);
  t.deepEqual(await run(0.5), half, 'the same seed masks the same samples the same way');
  const flags = half.flatMap((b) => b.masked);
  t.true(flags.filter(Boolean).length >= 5 && flags.filter(Boolean).length <= 15, `${flags.filter(Boolean).length} of 20 masked`);
  half.forEach((b, k) => b.masked.forEach((m, i) => t.is(b.mouth[i] !== none[k].mouth[i], m, 'masked samples, and only they, change at the mouth')));
  t.throws(() => Loader.fromRecord(rec, { batch: 4, maskProbability: 1.5 }), { message: 'masks: probability must be in [0, 1], got 1.5' });
  t.throws(() => Loader.fromRecord(rec, { batch: 4, maskProbability: 0.3, maskColorWeights: [1, 2] }), { message: /colour weights must be 6 non-negative numbers/ });
  // Only black rendered masks: every masked mouth is dark.
  for await (const b of Loader.fromRecord(rec, { batch: 10, flip: false, maskProbability: 1, maskTemplateShare: 0, maskColorWeights: [0, 0, 1, 0, 0, 0] }).epoch(0)) {
    const px = b.images.toFloat32Array();
    t.true(b.masked.every((m, i) => m && px[i * 3 * 112 * 112 + 92 * 112 + 56] < -0.6));
    b.images.dispose();
  }
});

test("the mask defaults have one home, the synthesizers' crate: the seed team's 35%, half templates", (t) => {
  t.deepEqual({ ...MASK_DEFAULTS }, { maskProbability: 0.35, maskTemplateShare: 0.5 });
  t.is(CONFIG_DEFAULTS.maskProbability, MASK_DEFAULTS.maskProbability);
  t.is(CONFIG_DEFAULTS.maskTemplateShare, MASK_DEFAULTS.maskTemplateShare);
});
