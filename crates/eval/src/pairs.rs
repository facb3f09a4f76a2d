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

/// Scores every pair (row i of `a`, row j of `b`) allowed by `pair(i, j)`; `upper` skips
/// blocks wholly below the diagonal.
fn score(a: Set, b: Set, d: usize, pair: &(dyn Fn(usize, usize) -> bool + Sync), upper: bool, keep: Keep) -> Scores {
    let (la, lb) = (a.labels, b.labels);
    let (ba, bb) = (blocks(la.len()), blocks(lb.len()));
    let tasks: Vec<((usize, usize), (usize, usize))> =
        ba.iter().flat_map(|&x| bb.iter().map(move |&y| (x, y))).filter(|&(x, y)| !upper || y.1 > x.0).collect();
    let empty = || (Vec::new(), Impostors::new(keep.bins, keep.top));
    let (mut genuine, impostors) = tasks
        .par_iter()
        // One accumulator per split of the work, not per block: histograms are not cheap.
        .fold(empty, |(mut g, mut imp), &((i0, i1), (j0, j1))| {
            let (h, w) = (i1 - i0, j1 - j0);
            let mut s = vec![0f32; h * w];
            matmul(Mat::new(&a.emb[i0 * d..i1 * d], h, d), Mat::t(&b.emb[j0 * d..j1 * d], w, d), &mut s, false, false);
            for i in 0..h {
                for j in 0..w {
                    let (gi, gj) = (i0 + i, j0 + j);
                    if !pair(gi, gj) {
                        continue;
                    }
                    let v = s[i * w + j].clamp(-1.0, 1.0);
                    if la[gi] == lb[gj] {
                        g.push(v)
                    } else {
                        imp.add(v)
                    }
                }
            }
            (g, imp)
        })
        .reduce(empty, |(mut g1, i1), (g2, i2)| {
            g1.extend(g2);
            (g1, i1.merge(i2))
        });
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
