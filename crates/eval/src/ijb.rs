//! IJB-B / IJB-C 1:1 verification as insightface's `eval_ijbc.py` scores it: template
//! features (pooled by the caller from image features) L2-normalised, each listed pair scored
//! by their dot product, TAR read off sklearn's ROC at the kept FAR nearest each target;
//! 1:N identification as `ijb_1n.py` scores it.

use crate::roc::{nearest, sklearn_roc, Roc};
use rayon::prelude::*;

/// `meta/<set>_template_pair_label.txt`: one `template template label` line per pair (label 1
/// for the same subject, 0 otherwise), separated by spaces.
pub struct PairList {
    pub first: Vec<i64>,
    pub second: Vec<i64>,
    pub same: Vec<bool>,
}

/// Parses a pair list; `what` names the file in errors (with the line).
pub fn parse_pairs(text: &[u8], what: &str) -> Result<PairList, String> {
    let mut out = PairList { first: Vec::new(), second: Vec::new(), same: Vec::new() };
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad = || {
            format!(
                "{what}:{}: expected 'template template label' (integers, label 0 or 1), got '{}'",
                n + 1,
                String::from_utf8_lossy(line)
            )
        };
        let fields: Vec<i64> = std::str::from_utf8(line)
            .map_err(|_| bad())?
            .split_ascii_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        match fields[..] {
            [a, b, l @ (0 | 1)] => {
                out.first.push(a);
                out.second.push(b);
                out.same.push(l == 1);
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// sklearn's `preprocessing.normalize`: each row over its L2 norm, all-zero rows left as they are.
pub fn normalize_rows(feats: &mut [f64], dim: usize) {
    feats.par_chunks_mut(dim).for_each(|row| {
        let n = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        if n > 0.0 {
            row.iter_mut().for_each(|v| *v /= n);
        }
    });
}

/// The dot product of rows `a[i]` and `b[i]` of `feats` `[t, dim]` for every pair i.
pub fn score_pairs(feats: &[f64], dim: usize, a: &[u32], b: &[u32]) -> Vec<f64> {
    let row = |i: u32| &feats[i as usize * dim..(i as usize + 1) * dim];
    a.par_iter().zip(b.par_iter()).map(|(&i, &j)| row(i).iter().zip(row(j)).map(|(x, y)| x * y).sum()).collect()
}

/// One TAR@FAR as `eval_ijbc.py` reports it, with the point of the ROC it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    pub far: f64,
    pub tar: f64,
    /// The kept FAR nearest `far`, and the score threshold of that point.
    pub at: f64,
    pub threshold: f64,
}

/// TAR at each FAR of `fars` for scored pairs, and the ROC they were read from.
pub fn tar_at_far(scores: &[f64], same: &[bool], fars: &[f64]) -> (Vec<Read>, Roc) {
    let roc = sklearn_roc(scores, same);
    let reads = fars
        .iter()
        .map(|&far| {
            let i = nearest(&roc, far);
            Read { far, tar: roc.tpr[i], at: roc.fpr[i], threshold: roc.thresholds[i] }
        })
        .collect();
    (reads, roc)
}

/// 1:N identification as insightface's `ijb_1n.py` scores it: every probe against every
/// gallery template (rows L2-normalised), `mate[i]` the gallery row of probe i's subject.
pub struct Identification {
    /// The mate's rank among the gallery (1 + the templates scoring above it).
    pub ranks: Vec<u32>,
    /// Each probe's mate score.
    pub mates: Vec<f64>,
    /// The `top` highest non-mate scores over all probes, descending.
    pub non_mates: Vec<f64>,
}

pub fn identify(probes: &[f64], gallery: &[f64], dim: usize, mate: &[u32], top: usize) -> Identification {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    // A total order on the scores, for the heap (they are finite cosines).
    #[derive(PartialEq)]
    struct S(f64);
    impl Eq for S {}
    impl PartialOrd for S {
        fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for S {
        fn cmp(&self, o: &Self) -> std::cmp::Ordering {
            self.0.total_cmp(&o.0)
        }
    }
    let g: Vec<&[f64]> = gallery.chunks(dim).collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    // Each probe's rank and mate score, and a running top of non-mates (a min-heap) per worker.
    let keep = |mut h: BinaryHeap<Reverse<S>>, s: f64| {
        if h.len() < top {
            h.push(Reverse(S(s)));
        } else if h.peek().is_some_and(|m| s > m.0 .0) {
            h.pop();
            h.push(Reverse(S(s)));
        }
        h
    };
    let (rows, heap) = probes
        .par_chunks(dim)
        .zip(mate.par_iter())
        .fold(
            || (Vec::new(), BinaryHeap::new()),
            |(mut rows, mut heap), (p, &m)| {
                let sims: Vec<f64> = g.iter().map(|r| dot(p, r)).collect();
                let own = sims[m as usize];
                rows.push((1 + sims.iter().filter(|&&s| s > own).count() as u32, own));
                for (j, &s) in sims.iter().enumerate() {
                    if j != m as usize {
                        heap = keep(heap, s);
                    }
                }
                (rows, heap)
            },
        )
        .reduce(
            || (Vec::new(), BinaryHeap::new()),
            |(mut a, h1), (b, h2)| {
                a.extend(b);
                (a, h2.into_iter().fold(h1, |h, Reverse(S(s))| keep(h, s)))
            },
        );
    let mut non_mates: Vec<f64> = heap.into_iter().map(|Reverse(S(s))| s).collect();
    non_mates.sort_by(|a, b| b.total_cmp(a));
    Identification { ranks: rows.iter().map(|r| r.0).collect(), mates: rows.iter().map(|r| r.1).collect(), non_mates }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roc_matches_sklearn_on_ties_and_collinear_points() {
        // sklearn.metrics.roc_curve([1,0,1,1,0,0,1,0], [.9,.8,.8,.7,.6,.5,.4,.3]):
        // fpr [0, 0, .25, .25, .75, .75, 1], tpr [0, .25, .5, .75, .75, 1, 1].
        let s = [0.9, 0.8, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3];
        let y = [true, false, true, true, false, false, true, false];
        let r = sklearn_roc(&s, &y);
        assert_eq!(r.fpr, [0.0, 0.0, 0.25, 0.25, 0.75, 0.75, 1.0]);
        assert_eq!(r.tpr, [0.0, 0.25, 0.5, 0.75, 0.75, 1.0, 1.0]);
        assert_eq!(r.thresholds[1..], [0.9, 0.8, 0.7, 0.5, 0.4, 0.3]);
        // FAR 0.25 is kept twice: the higher TAR; 0.5 is as near 0.25 as 0.75: the higher TAR.
        let (reads, _) = tar_at_far(&s, &y, &[0.25, 0.5, 1e-6]);
        assert_eq!(reads.iter().map(|r| r.tar).collect::<Vec<_>>(), [0.75, 1.0, 0.25]);
    }

    #[test]
    fn pairs_are_parsed_and_bad_lines_named() {
        let p = parse_pairs(b"1 11065 1\r\n2 3 0\n\n", "pairs.txt").unwrap();
        assert_eq!((p.first, p.second, p.same), (vec![1, 2], vec![11065, 3], vec![true, false]));
        let e = parse_pairs(b"1 2 1\n1 2 7\n", "pairs.txt").err().unwrap();
        assert!(e.starts_with("pairs.txt:2:"), "{e}");
    }

    #[test]
    fn ranks_mates_and_the_top_non_mates_of_all_probes() {
        // Gallery: the axes of 2-D; probes at angles scoring (0.8, 0.6) and (0.6, 0.8).
        let r = identify(&[0.8, 0.6, 0.6, 0.8, 1.0, 0.0], &[1.0, 0.0, 0.0, 1.0], 2, &[1, 1, 0], 2);
        assert_eq!(r.ranks, [2, 1, 1]);
        assert_eq!(r.mates, [0.6, 0.8, 1.0]);
        assert_eq!(r.non_mates, [0.8, 0.6]);
    }
}
