//! Scoring pairs: cosine similarities of L2-normalised embeddings by blocked products, each
//! block reduced straight into genuine scores and impostor statistics (the n × n score matrix
//! never exists), blocks in parallel.

use crate::Impostors;
use maskfr_core::kernels::matmul::{matmul, Mat};
use rayon::prelude::*;

/// Embeddings `[n, d]` (L2-normalised, row-major) and their identity labels.
#[derive(Clone, Copy)]
pub struct Set<'a> {
    pub emb: &'a [f32],
    pub labels: &'a [i64],
}

/// How impostor scores are kept: histogram bins over [−1, 1] and the exact top count.
#[derive(Clone, Copy)]
pub struct Keep {
    pub bins: usize,
    pub top: usize,
}

pub struct Scores {
    /// Every genuine score, ascending.
    pub genuine: Vec<f32>,
    pub impostors: Impostors,
}

/// Rows per block: a 1024 × 1024 block is 4 MB of scores.
const BLOCK: usize = 1024;

fn blocks(n: usize) -> Vec<(usize, usize)> {
    (0..n).step_by(BLOCK).map(|a| (a, (a + BLOCK).min(n))).collect()
}

/// Folds every pair (row i of `a`, row j of `b`) allowed by `pair(i, j)` with its cosine
/// score; `upper` skips blocks wholly below the diagonal. One accumulator per split of the
/// work (not per block: histograms are not cheap), merged at the end.
#[allow(clippy::too_many_arguments)]
fn fold_pairs<A: Send>(
    a: Set,
    b: Set,
    d: usize,
    pair: &(dyn Fn(usize, usize) -> bool + Sync),
    upper: bool,
    empty: &(dyn Fn() -> A + Sync),
    visit: &(dyn Fn(&mut A, usize, usize, f32) + Sync),
    merge: &(dyn Fn(A, A) -> A + Sync),
) -> A {
    let (ba, bb) = (blocks(a.labels.len()), blocks(b.labels.len()));
    let tasks: Vec<((usize, usize), (usize, usize))> =
        ba.iter().flat_map(|&x| bb.iter().map(move |&y| (x, y))).filter(|&(x, y)| !upper || y.1 > x.0).collect();
    tasks
        .par_iter()
        .fold(empty, |mut acc, &((i0, i1), (j0, j1))| {
            let (h, w) = (i1 - i0, j1 - j0);
            let mut s = vec![0f32; h * w];
            matmul(Mat::new(&a.emb[i0 * d..i1 * d], h, d), Mat::t(&b.emb[j0 * d..j1 * d], w, d), &mut s, false, false);
            for i in 0..h {
                for j in 0..w {
                    let (gi, gj) = (i0 + i, j0 + j);
                    if pair(gi, gj) {
                        visit(&mut acc, gi, gj, s[i * w + j].clamp(-1.0, 1.0));
                    }
                }
            }
            acc
        })
        .reduce(empty, merge)
}

/// Scores every pair allowed by `pair(i, j)` into genuine scores and impostor statistics.
fn score(a: Set, b: Set, d: usize, pair: &(dyn Fn(usize, usize) -> bool + Sync), upper: bool, keep: Keep) -> Scores {
    let (la, lb) = (a.labels, b.labels);
    let (mut genuine, impostors) = fold_pairs(
        a,
        b,
        d,
        pair,
        upper,
        &|| (Vec::new(), Impostors::new(keep.bins, keep.top)),
        &|(g, imp), i, j, v| if la[i] == lb[j] { g.push(v) } else { imp.add(v) },
        &|(mut g1, i1), (g2, i2)| {
            g1.extend(g2);
            (g1, i1.merge(i2))
        },
    );
    genuine.sort_by(f32::total_cmp);
    Scores { genuine, impostors }
}

/// Every unordered pair of distinct rows of `set`.
pub fn score_all_vs_all(set: Set, d: usize, keep: Keep) -> Scores {
    score(set, set, d, &|i, j| j > i, true, keep)
}

/// Every (probe, gallery) pair; with `paired`, probe i and gallery i are the same source
/// image (a masked copy of it) and that pair is left out.
pub fn score_cross(probe: Set, gallery: Set, d: usize, paired: bool, keep: Keep) -> Scores {
    score(probe, gallery, d, &|i, j| !paired || i != j, false, keep)
}

/// One group of probes' pairs, counted at each of a list of thresholds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupCounts {
    pub genuine: u64,
    pub impostors: u64,
    /// Pairs scoring at or above each threshold.
    pub genuine_accepted: Vec<u64>,
    pub impostors_accepted: Vec<u64>,
}

/// The pairs of [`score_cross`] counted by the group of their probe: `groups[i]` is probe
/// i's group (below `n_groups`; any other value leaves its pairs out), and each group's
/// genuine and impostor pairs scoring at or above each of `thresholds` are counted exactly
/// (a second pass over the scores: the thresholds come from the first).
pub fn count_cross_groups(
    probe: Set,
    gallery: Set,
    d: usize,
    paired: bool,
    groups: &[u32],
    n_groups: usize,
    thresholds: &[f64],
) -> Vec<GroupCounts> {
    assert_eq!(groups.len(), probe.labels.len(), "count_cross_groups: one group per probe");
    let (lp, lg) = (probe.labels, gallery.labels);
    let zero = GroupCounts {
        genuine: 0,
        impostors: 0,
        genuine_accepted: vec![0; thresholds.len()],
        impostors_accepted: vec![0; thresholds.len()],
    };
    let in_group = |i: usize, j: usize| (groups[i] as usize) < n_groups && (!paired || i != j);
    fold_pairs(
        probe,
        gallery,
        d,
        &in_group,
        false,
        &|| vec![zero.clone(); n_groups],
        &|acc, i, j, v| {
            let g = &mut acc[groups[i] as usize];
            let (total, accepted) = if lp[i] == lg[j] {
                (&mut g.genuine, &mut g.genuine_accepted)
            } else {
                (&mut g.impostors, &mut g.impostors_accepted)
            };
            *total += 1;
            for (n, &t) in accepted.iter_mut().zip(thresholds) {
                *n += (v as f64 >= t) as u64;
            }
        },
        &|mut x, y| {
            for (a, b) in x.iter_mut().zip(y) {
                a.genuine += b.genuine;
                a.impostors += b.impostors;
                a.genuine_accepted.iter_mut().zip(b.genuine_accepted).for_each(|(p, q)| *p += q);
                a.impostors_accepted.iter_mut().zip(b.impostors_accepted).for_each(|(p, q)| *p += q);
            }
            x
        },
    )
}
