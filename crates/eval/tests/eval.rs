//! Operating points on hand-computed cases (sklearn's ROC rule, worked by hand), the
//! histogram past the exact top, and blocked scoring (and its counts by probe group) against
//! a direct double loop.

use maskfr_eval::{count_cross_groups, level, score_all_vs_all, score_cross, Impostors, Keep, Set};

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

#[test]
fn group_counts_match_a_double_loop() {
    let (n, d) = (1100, 16); // more than one 1024-row block
    let (p, e) = (unit_rows(n, d, 5), unit_rows(n, d, 17));
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 31).collect();
    // Three groups and probes in none (u32::MAX).
    let groups: Vec<u32> = (0..n).map(|i| if i % 11 == 0 { u32::MAX } else { (i * 7 % 3) as u32 }).collect();
    let thresholds = [f64::NEG_INFINITY, -0.1, 0.05, 0.3, f64::INFINITY];
    let c = count_cross_groups(
        Set { emb: &p, labels: &labels },
        Set { emb: &e, labels: &labels },
        d,
        true,
        &groups,
        3,
        &thresholds,
    );
    assert_eq!(c.len(), 3);
    for (g, got) in c.iter().enumerate() {
        let (mut gen, mut imp) = (0u64, 0u64);
        let (mut ga, mut ia) = (vec![0i64; 5], vec![0i64; 5]);
        // Scores this close to a threshold may fall either side with another summation order.
        let mut near = [0i64; 5];
        for i in (0..n).filter(|&i| groups[i] == g as u32) {
            for j in (0..n).filter(|&j| j != i) {
                let v =
                    p[i * d..(i + 1) * d].iter().zip(&e[j * d..(j + 1) * d]).map(|(x, y)| x * y).sum::<f32>() as f64;
                let same = labels[i] == labels[j];
                if same {
                    gen += 1
                } else {
                    imp += 1
                }
                for (k, &t) in thresholds.iter().enumerate() {
                    near[k] += ((v - t).abs() < 1e-5) as i64;
                    if v >= t {
                        if same {
                            ga[k] += 1
                        } else {
                            ia[k] += 1
                        }
                    }
                }
            }
        }
        assert_eq!((got.genuine, got.impostors), (gen, imp), "group {g}");
        for k in 0..5 {
            let (dg, di) = (got.genuine_accepted[k] as i64 - ga[k], got.impostors_accepted[k] as i64 - ia[k]);
            assert!(dg.abs() + di.abs() <= near[k], "group {g} threshold {}: {dg}, {di}", thresholds[k]);
        }
        assert_eq!((got.genuine_accepted[0], got.impostors_accepted[0]), (gen, imp));
        assert_eq!((got.genuine_accepted[4], got.impostors_accepted[4]), (0, 0));
        assert!(ga[2] > 0 && ia[2] > 0 && ia[2] < imp as i64, "the thresholds split the group's pairs");
    }
}
