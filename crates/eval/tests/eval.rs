//! Operating points on hand-computed cases (sklearn's ROC rule, worked by hand), the
//! histogram past the exact top, and blocked scoring against a direct double loop.

use maskfr_eval::{level, score_all_vs_all, score_cross, Impostors, Keep, Set};

fn impostors(scores: &[f32], keep: usize) -> Impostors {
    let mut imp = Impostors::new(1 << 16, keep);
    scores.iter().for_each(|&s| imp.add(s));
    imp
}

#[test]
fn operating_points_follow_the_strict_roc_rule() {
    let genuine = [0.2, 0.5, 0.9];
    let imp = impostors(&[0.1, 0.3, 0.6, 0.7], 10);
    // (fmr, tar, threshold, false matches allowed): thresholds 0.9 | 0.7 | 0.5 on the ROC.
    for (fmr, tar, th, k) in
        [(0.1, 1.0 / 3.0, 0.9, 0), (0.25, 1.0 / 3.0, 0.7, 1), (0.5, 2.0 / 3.0, 0.5, 2), (0.74, 2.0 / 3.0, 0.5, 2)]
    {
        let l = level(&genuine, &imp, fmr);
        assert_eq!((l.tar, l.threshold as f32, l.false_matches_allowed), (tar, th, k), "FMR {fmr}");
        assert!((l.fnmr - (1.0 - tar)).abs() < 1e-12 && l.exact && l.impostors == 4);
    }
    let all = level(&genuine, &imp, 1.0);
    assert_eq!((all.tar, all.threshold), (1.0, f64::NEG_INFINITY));
    // Ties: the impostors at 0.6 cannot be split, so FMR 1/3 only has the origin (+∞).
    let tied = level(&[0.6], &impostors(&[0.6, 0.6, 0.2], 10), 1.0 / 3.0);
    assert_eq!((tied.tar, tied.threshold), (0.0, f64::INFINITY));
}

#[test]
fn past_the_exact_top_the_histogram_answers_within_a_bin() {
    let scores: Vec<f32> = (0..10_000).map(|i| ((i * 7919 % 10_000) as f32 / 10_000.0) * 2.0 - 1.0).collect();
    let imp = impostors(&scores, 100);
    let mut sorted = scores.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    assert_eq!(imp.kth_highest(50), Some((sorted[49], true)));
    let (v, exact) = imp.kth_highest(5000).unwrap();
    assert!(!exact && (v - sorted[4999]).abs() <= 2.0 / 65536.0 + 1e-6, "{v} vs {}", sorted[4999]);
    assert_eq!(imp.kth_highest(10_001), None);
    let merged = impostors(&scores[..5000], 100).merge(impostors(&scores[5000..], 100));
    assert_eq!((merged.count, merged.top()), (imp.count, imp.top()));
}

fn unit_rows(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut v: Vec<f32> =
        (0..n * d).map(|i| (((i as u64 + seed) * 2_654_435_761 % 1_000_003) as f32 / 500_001.5) - 1.0).collect();
    for r in v.chunks_mut(d) {
        let n = r.iter().map(|x| x * x).sum::<f32>().sqrt();
        r.iter_mut().for_each(|x| *x /= n);
    }
    v
}

#[test]
fn blocked_scoring_matches_a_double_loop() {
    let (n, d) = (1500, 24); // more than one 1024-row block
    let e = unit_rows(n, d, 3);
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 97).collect();
    let dot = |a: &[f32], i: usize, b: &[f32], j: usize| {
        a[i * d..(i + 1) * d].iter().zip(&b[j * d..(j + 1) * d]).map(|(x, y)| x * y).sum::<f32>()
    };
    let s = score_all_vs_all(Set { emb: &e, labels: &labels }, d, Keep { bins: 1 << 16, top: 1000 });
    let (mut g, mut top) = (Vec::new(), Vec::new());
    for i in 0..n {
        for j in i + 1..n {
            if labels[i] == labels[j] {
                g.push(dot(&e, i, &e, j))
            } else {
                top.push(dot(&e, i, &e, j))
            }
        }
    }
    g.sort_by(f32::total_cmp);
    top.sort_by(|a, b| b.total_cmp(a));
    assert_eq!(s.impostors.count as usize, top.len());
    assert_eq!(s.genuine.len(), g.len());
    assert!(s.genuine.iter().zip(&g).all(|(a, b)| (a - b).abs() < 1e-5));
    assert!(s.impostors.top().iter().zip(&top[..1000]).all(|(a, b)| (a - b).abs() < 1e-5));

    let p = unit_rows(n, d, 11);
    let c = score_cross(
        Set { emb: &p, labels: &labels },
        Set { emb: &e, labels: &labels },
        d,
        true,
        Keep { bins: 1 << 16, top: 10 },
    );
    let genuine_pairs = (0..n).map(|i| (0..n).filter(|&j| j != i && labels[i] == labels[j]).count()).sum::<usize>();
    assert_eq!((c.genuine.len(), c.impostors.count as usize), (genuine_pairs, n * n - n - genuine_pairs));
}
