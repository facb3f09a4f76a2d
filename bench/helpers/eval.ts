// The `eval` suite's measurement in a fresh process (so its peak memory is its own): all
// pairs of N random 512-d unit embeddings of N/10 identities scored into operating points.
// Prints one JSON line: seconds, pairs, the score statistics' bytes, and the process's peak
// resident memory at start and at the end (the embeddings themselves are N·512·4 bytes).

import { ops, randn, tidy, verifyAllVsAll } from '../../ts';

const startMiB = process.resourceUsage().maxRSS / 1024;
const n = Number(process.env.N ?? 20000);
const emb = tidy(() => ops.l2Normalize(randn([n, 512], { seed: 1 })).toFloat32Array());
const labels = Int32Array.from({ length: n }, (_, i) => Math.floor(i / 10));
const t = performance.now();
const r = verifyAllVsAll(emb, labels, 512);
const seconds = (performance.now() - t) / 1000;
console.log(JSON.stringify({ seconds, pairs: r.genuine + r.impostors, bytes: r.bytes, startMiB, peakMiB: process.resourceUsage().maxRSS / 1024 }));
