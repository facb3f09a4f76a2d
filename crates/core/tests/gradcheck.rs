//! Every kernel's backward against central finite differences, in f64, on seeded random
//! inputs. The kernels are the generic ones the f32 backend ships.
//! Tolerance: |numeric − analytic| ≤ 1e-6 · max(1, max|analytic|), NaN fails.

use maskfr_core::kernels::batchnorm::{self, BnGeom};
use maskfr_core::kernels::conv::{self, ConvGeom};
use maskfr_core::kernels::random::dropout;
use maskfr_core::kernels::{l2norm, loss, margin, matmul, prelu, reduce};
use maskfr_core::random;
use maskfr_core::Margin;

fn randn(n: usize, seed: u64) -> Vec<f64> {
    (0..n).map(|i| random::normal(seed, i as u64)).collect()
}

/// Checks `analytic = ∂/∂x Σ r·f(x)` at up to 48 random coordinates.
fn check(name: &str, x: &[f64], r: &[f64], f: impl Fn(&[f64]) -> Vec<f64>, analytic: &[f64]) {
    assert_eq!(x.len(), analytic.len(), "{name}: gradient length");
    let loss = |v: &[f64]| f(v).iter().zip(r).map(|(a, b)| a * b).sum::<f64>();
    let scale = analytic.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let h = 1e-6;
    let picks: Vec<usize> = if x.len() <= 48 {
        (0..x.len()).collect()
    } else {
        (0..48).map(|i| (random::uniform(99, i) * x.len() as f64) as usize).collect()
    };
    let mut xp = x.to_vec();
    for i in picks {
        xp[i] = x[i] + h;
        let up = loss(&xp);
        xp[i] = x[i] - h;
        let down = loss(&xp);
        xp[i] = x[i];
        let numeric = (up - down) / (2.0 * h);
        let err = (numeric - analytic[i]).abs();
        assert!(
            err <= 1e-6 * scale,
            "{name}[{i}]: numeric {numeric} vs analytic {} (err {err:e}, scale {scale})",
            analytic[i]
        );
    }
}

/// Direct convolution, the independent reference for the im2col + GEMM kernel.
fn naive_conv(g: &ConvGeom, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
    let mut y = vec![0.0; g.n * g.o * g.oh * g.ow];
    for n in 0..g.n {
        for o in 0..g.o {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut s = b.map_or(0.0, |b| b[o]);
                    for c in 0..g.c {
                        for ki in 0..g.kh {
                            for kj in 0..g.kw {
                                let iy = (oy * g.sh + ki) as isize - g.ph as isize;
                                let ix = (ox * g.sw + kj) as isize - g.pw as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                                    s += x[((n * g.c + c) * g.h + iy as usize) * g.w + ix as usize]
                                        * w[((o * g.c + c) * g.kh + ki) * g.kw + kj];
                                }
                            }
                        }
                    }
                    y[((n * g.o + o) * g.oh + oy) * g.ow + ox] = s;
                }
            }
        }
    }
    y
}

fn conv_case(x_shape: [usize; 4], w_shape: [usize; 4], stride: [usize; 2], pad: [usize; 2], bias: bool) {
    let g = ConvGeom::new(&x_shape, &w_shape, stride, pad).unwrap();
    let name = format!("conv x{x_shape:?} w{w_shape:?} s{stride:?} p{pad:?}");
    let x = randn(x_shape.iter().product(), 1);
    let w = randn(w_shape.iter().product(), 2);
    let b = bias.then(|| randn(g.o, 3));
    let fwd = |x: &[f64], w: &[f64], b: Option<&[f64]>| {
        let mut y = vec![0.0; g.n * g.o * g.oh * g.ow];
        conv::conv2d_forward(&g, x, w, b, &mut y);
        y
    };
    let y = fwd(&x, &w, b.as_deref());
    let reference = naive_conv(&g, &x, &w, b.as_deref());
    for (i, (a, e)) in y.iter().zip(&reference).enumerate() {
        assert!((a - e).abs() <= 1e-12 * (1.0 + e.abs()), "{name} forward[{i}]: {a} vs direct {e}");
    }
    let r = randn(y.len(), 4);
    let mut gx = vec![f64::NAN; x.len()];
    conv::conv2d_backward_input(&g, &r, &w, &mut gx);
    check(&format!("{name} dx"), &x, &r, |x| fwd(x, &w, b.as_deref()), &gx);
    let mut gw = vec![f64::NAN; w.len()];
    conv::conv2d_backward_weight(&g, &r, &x, &mut gw);
    check(&format!("{name} dw"), &w, &r, |w| fwd(&x, w, b.as_deref()), &gw);
}

#[test]
fn conv2d_matches_direct_and_finite_differences() {
    // Pools of 1, 2 and 3 threads walk every batch plan: one threaded GEMM per image or per
    // group of images, and groups spread over threads.
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            conv_case([2, 3, 7, 6], [4, 3, 3, 3], [1, 1], [1, 1], true); // whole batch in one GEMM
            conv_case([3, 4, 8, 8], [5, 4, 3, 3], [2, 2], [1, 1], false); // IResNet downsampling conv
            conv_case([2, 4, 8, 7], [6, 4, 1, 1], [2, 2], [0, 0], false); // 1×1 stride-2 shortcut
            conv_case([2, 5, 6, 6], [3, 5, 1, 1], [1, 1], [0, 0], true); // pointwise, grouped
            conv_case([2, 2, 9, 7], [3, 2, 2, 3], [2, 1], [0, 2], true); // rectangular, padding > k/2
            conv_case([2, 2, 5, 5], [2, 2, 5, 5], [1, 1], [0, 0], false); // kernel = image
            conv_case([3, 2, 32, 32], [3, 2, 3, 3], [1, 1], [1, 1], true); // one image per GEMM
            conv_case([1, 3, 32, 33], [2, 3, 1, 1], [1, 1], [0, 0], false); // pointwise, image read in place
            conv_case([8, 2, 16, 16], [3, 2, 3, 3], [1, 1], [1, 1], false); // groups of several images
            conv_case([9, 2, 32, 32], [3, 2, 1, 1], [1, 1], [0, 0], false); // 1×1 weight gradient in image chunks
        });
    }
}

#[test]
fn batch_norm_training_and_eval_gradients() {
    for shape in [vec![4, 3, 5, 2], vec![6, 5]] {
        let g = BnGeom::new("bn", &shape, shape[1]).unwrap();
        let n: usize = shape.iter().product();
        let x = randn(n, 5).iter().map(|v| 2.0 * v + 0.5).collect::<Vec<_>>();
        let (w, b) = (randn(g.c, 6), randn(g.c, 7));
        let r = randn(n, 8);
        for training in [true, false] {
            let (rm, rv): (Vec<f64>, Vec<f64>) =
                (randn(g.c, 9), randn(g.c, 10).iter().map(|v| v.abs() + 0.5).collect());
            let stats = |x: &[f64]| {
                if training {
                    let (m, v) = batchnorm::batch_stats(&g, x);
                    (m, batchnorm::invstd(&v, 1e-5))
                } else {
                    (rm.clone(), batchnorm::invstd(&rv, 1e-5))
                }
            };
            let fwd = |x: &[f64], w: &[f64], b: &[f64]| {
                let (m, is) = stats(x);
                let mut y = vec![0.0; n];
                batchnorm::apply(&g, x, &m, &is, w, b, &mut y);
                y
            };
            let (m, is) = stats(&x);
            let (mut gx, mut gw, mut gb) = (vec![f64::NAN; n], vec![f64::NAN; g.c], vec![f64::NAN; g.c]);
            batchnorm::backward(&g, &r, &x, &m, &is, &w, training, &mut gx, &mut gw, &mut gb);
            let name = format!("bn {shape:?} training={training}");
            check(&format!("{name} dx"), &x, &r, |x| fwd(x, &w, &b), &gx);
            check(&format!("{name} dw"), &w, &r, |w| fwd(&x, w, &b), &gw);
            check(&format!("{name} db"), &b, &r, |b| fwd(&x, &w, b), &gb);
        }
    }
}

#[test]
fn batch_norm_running_statistics_follow_pytorch_rule() {
    let g = BnGeom::new("bn", &[5, 2, 3], 2).unwrap();
    let x = randn(30, 11);
    let (mean, var) = batchnorm::batch_stats(&g, &x);
    let (mut rm, mut rv) = (vec![0.3, -0.2], vec![1.5, 0.7]);
    batchnorm::update_running(&g, &mean, &var, 0.1, &mut rm, &mut rv);
    for c in 0..2 {
        let vals: Vec<f64> = (0..5).flat_map(|n| x[(n * 2 + c) * 3..(n * 2 + c + 1) * 3].to_vec()).collect();
        let m = vals.iter().sum::<f64>() / 15.0;
        let unbiased = vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 14.0;
        assert!((rm[c] - (0.9 * [0.3, -0.2][c] + 0.1 * m)).abs() < 1e-12);
        assert!((rv[c] - (0.9 * [1.5, 0.7][c] + 0.1 * unbiased)).abs() < 1e-12);
    }
}

#[test]
fn prelu_gradients() {
    let (n, c, s) = (3, 4, 5);
    let x = randn(n * c * s, 12);
    let a = randn(c, 13).iter().map(|v| 0.25 + 0.1 * v).collect::<Vec<_>>();
    let r = randn(x.len(), 14);
    let fwd = |x: &[f64], a: &[f64]| {
        let mut y = vec![0.0; x.len()];
        prelu::prelu(c, s, x, a, &mut y);
        y
    };
    let (mut gx, mut ga) = (vec![f64::NAN; x.len()], vec![f64::NAN; c]);
    prelu::prelu_backward(c, s, &r, &x, &a, &mut gx, &mut ga);
    check("prelu dx", &x, &r, |x| fwd(x, &a), &gx);
    check("prelu dalpha", &a, &r, |a| fwd(&x, a), &ga);
}

#[test]
fn dropout_is_seeded_inverted_and_its_own_backward() {
    let x = randn(20_000, 15);
    let (mut y, mut y2) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    dropout(7, 0.3, &x, &mut y);
    dropout(7, 0.3, &x, &mut y2);
    assert_eq!(y, y2, "same seed, same mask");
    let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / x.len() as f64;
    assert!((dropped - 0.3).abs() < 0.015, "dropped fraction {dropped}");
    for (a, b) in y.iter().zip(&x) {
        assert!(*a == 0.0 || (a - b / 0.7).abs() < 1e-12);
    }
    let r = randn(x.len(), 16);
    let mut g = vec![0.0; x.len()];
    dropout(7, 0.3, &r, &mut g);
    check(
        "dropout dx",
        &x,
        &r,
        |x| {
            let mut y = vec![0.0; x.len()];
            dropout(7, 0.3, x, &mut y);
            y
        },
        &g,
    );
}

#[test]
fn matmul_with_transposes_matches_naive() {
    let (m, k, n) = (7, 5, 6);
    let a = randn(m * k, 17);
    let b = randn(k * n, 18);
    let at: Vec<f64> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect(); // [k, m]
    let bt: Vec<f64> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect(); // [n, k]
    let mut expect = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            expect[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
        }
    }
    let cases = [
        (matmul::Mat::new(&a[..], m, k), matmul::Mat::new(&b[..], k, n)),
        (matmul::Mat::t(&at[..], k, m), matmul::Mat::new(&b[..], k, n)),
        (matmul::Mat::new(&a[..], m, k), matmul::Mat::t(&bt[..], n, k)),
        (matmul::Mat::t(&at[..], k, m), matmul::Mat::t(&bt[..], n, k)),
    ];
    for (ci, (ma, mb)) in cases.into_iter().enumerate() {
        for threaded in [false, true] {
            let mut c = vec![1.0; m * n];
            matmul::matmul(ma, mb, &mut c, true, threaded);
            for (i, (got, e)) in c.iter().zip(&expect).enumerate() {
                assert!((got - (e + 1.0)).abs() < 1e-12, "case {ci} [{i}]: {got} vs {}", e + 1.0);
            }
        }
    }
}

#[test]
fn l2_normalize_gradients() {
    let d = 8;
    let mut x = randn(5 * d, 19);
    x[d..2 * d].iter_mut().for_each(|v| *v *= 1e-14); // a row under eps: the clamp branch
    let r = randn(x.len(), 20);
    let fwd = |x: &[f64]| {
        let mut y = vec![0.0; x.len()];
        l2norm::l2_normalize(d, 1e-12, x, &mut y);
        y
    };
    let y = fwd(&x);
    let norm0: f64 = y[..d].iter().map(|v| v * v).sum();
    assert!((norm0 - 1.0).abs() < 1e-12);
    let mut gx = vec![f64::NAN; x.len()];
    l2norm::l2_normalize_backward(d, 1e-12, &r, &x, &mut gx);
    // The clamped row's gradient (1e12 scale) is checked exactly, the rest by differences.
    for i in d..2 * d {
        assert!((gx[i] - r[i] / 1e-12).abs() <= 1e-6 * gx[i].abs());
    }
    let keep: Vec<usize> = (0..x.len()).filter(|i| !(d..2 * d).contains(i)).collect();
    let sub = |v: &[f64]| keep.iter().map(|&i| v[i]).collect::<Vec<_>>();
    let lift = |xs: &[f64]| {
        let mut full = x.clone();
        keep.iter().zip(xs).for_each(|(&i, &v)| full[i] = v);
        sub(&fwd(&full))
    };
    check("l2_normalize dx", &sub(&x), &sub(&r), lift, &sub(&gx));
}

#[test]
fn log_softmax_and_cross_entropy_gradients() {
    let (rows, k) = (4, 6);
    let x = randn(rows * k, 21).iter().map(|v| 3.0 * v).collect::<Vec<_>>();
    let r = randn(x.len(), 22);
    let fwd = |x: &[f64]| {
        let mut y = vec![0.0; x.len()];
        loss::log_softmax(k, x, &mut y);
        y
    };
    let y = fwd(&x);
    let mut gx = vec![f64::NAN; x.len()];
    loss::log_softmax_backward(k, &r, &y, &mut gx);
    check("log_softmax dx", &x, &r, fwd, &gx);

    let labels = [2usize, 0, 5, 3];
    let g = 1.7;
    let mut gce = vec![f64::NAN; x.len()];
    loss::cross_entropy_backward(k, &y, &labels, g, &mut gce);
    check("cross_entropy dx", &x, &[g], |x| vec![loss::nll_mean(k, &fwd(x), &labels)], &gce);
}

#[test]
fn channel_sum_and_sum() {
    let (n, c, s) = (3, 4, 5);
    let x = randn(n * c * s, 23);
    let mut out = vec![0.0; c];
    reduce::channel_sum(n, c, s, &x, &mut out);
    for ch in 0..c {
        let e: f64 = (0..n).flat_map(|i| (0..s).map(move |j| (i, j))).map(|(i, j)| x[(i * c + ch) * s + j]).sum();
        assert!((out[ch] - e).abs() < 1e-12);
    }
    assert!((reduce::sum(&x) - x.iter().sum::<f64>()).abs() < 1e-12);
    let sq: f64 = x.iter().map(|v| v * v).sum();
    assert!((reduce::sum_squares(&x) - sq).abs() < 1e-12 * sq, "sum of squares");
}

#[test]
fn margin_logits_gradients_cosface_and_arcface() {
    let (rows, k) = (5, 7);
    let cos: Vec<f64> = randn(rows * k, 31).iter().map(|v| (0.45 * v).tanh()).collect();
    let labels = [3usize, 0, 6, 6, 1];
    let r = randn(cos.len(), 32);
    for (m_arc, m_cos) in [(0.0, 0.4), (0.5, 0.0), (0.3, 0.2)] {
        let fwd = |c: &[f64]| {
            let mut y = vec![0.0; c.len()];
            margin::margin_logits(k, c, &labels, Margin { s: 64.0, m_arc, m_cos }, &mut y);
            y
        };
        let y = fwd(&cos);
        assert!((y[3] - 64.0 * ((cos[3].acos() + m_arc).cos() - m_cos)).abs() < 1e-9, "target logit");
        assert!((y[1] - 64.0 * cos[1]).abs() < 1e-12, "non-target logit");
        let mut g = vec![f64::NAN; cos.len()];
        margin::margin_logits_backward(k, &r, &cos, &labels, Margin { s: 64.0, m_arc, m_cos }, &mut g);
        check(&format!("margin m_arc={m_arc} m_cos={m_cos}"), &cos, &r, fwd, &g);
    }
}

/// The sharded margin softmax's chunk kernels over two "ranks" (columns split 4 + 5, the
/// first in chunks of 3 and 1, the second whole), their statistics combined as the ranks'
/// all-reduces would: the loss equals the direct margin cross-entropy, and the chunk
/// gradients are its derivative.
#[test]
fn sharded_margin_softmax_chunks_give_the_loss_and_its_gradient() {
    let (b, k) = (4, 9);
    let cos: Vec<f64> = randn(b * k, 41).iter().map(|v| (0.3 * v).tanh()).collect();
    let labels = [2usize, 8, 4, 0];
    let m = Margin { s: 64.0, m_arc: 0.3, m_cos: 0.2 };
    let shards = [(0usize, 4usize, vec![(0usize, 3usize), (3, 4)]), (4, 9, vec![(0, 5)])];
    // One shard's columns [c0, c1) as their own row-major matrix, and each row's target in it.
    let part = |c: &[f64], c0: usize, j0: usize, j1: usize| -> Vec<f64> {
        (0..b).flat_map(|i| c[i * k + c0 + j0..i * k + c0 + j1].to_vec()).collect()
    };
    let targets = |c0: usize, c1: usize| -> Vec<i32> {
        labels.iter().map(|&l| if (c0..c1).contains(&l) { (l - c0) as i32 } else { -1 }).collect()
    };
    let global = |c: &[f64]| {
        let stats: Vec<[Vec<f64>; 3]> = shards
            .iter()
            .map(|(c0, c1, chunks)| {
                let (mut mx, mut sm, mut tl) = (vec![f64::NEG_INFINITY; b], vec![0.0; b], vec![0.0; b]);
                for &(j0, j1) in chunks {
                    let cc = part(c, *c0, j0, j1);
                    margin::margin_chunk_stats(j1 - j0, &cc, &targets(*c0, *c1), j0, m, &mut mx, &mut sm, &mut tl);
                }
                [mx, sm, tl]
            })
            .collect();
        let gmax: Vec<f64> = (0..b).map(|i| stats.iter().map(|s| s[0][i]).fold(f64::NEG_INFINITY, f64::max)).collect();
        let mut gsum = vec![0.0; b];
        for s in &stats {
            let mut t = vec![0.0; b];
            margin::margin_softmax_total(&s[0], &s[1], &gmax, &mut t);
            gsum.iter_mut().zip(&t).for_each(|(g, v)| *g += v);
        }
        let tl: Vec<f64> = (0..b).map(|i| stats.iter().map(|s| s[2][i]).sum()).collect();
        (gmax, gsum, tl)
    };
    let f = |c: &[f64]| {
        let (gmax, gsum, tl) = global(c);
        vec![margin::margin_softmax_loss(&gmax, &gsum, &tl)]
    };
    // The direct loss: margin logits, log-softmax, mean negative log-likelihood.
    let mut z = vec![0.0; b * k];
    margin::margin_logits(k, &cos, &labels, m, &mut z);
    let mut logp = vec![0.0; b * k];
    loss::log_softmax(k, &z, &mut logp);
    let direct = loss::nll_mean(k, &logp, &labels);
    assert!((f(&cos)[0] - direct).abs() < 1e-12 * direct.abs(), "loss {} vs direct {direct}", f(&cos)[0]);
    let (gmax, gsum, _) = global(&cos);
    let mut g = vec![f64::NAN; b * k];
    for (c0, c1, chunks) in &shards {
        for &(j0, j1) in chunks {
            let cc = part(&cos, *c0, j0, j1);
            let mut gc = vec![0.0; cc.len()];
            margin::margin_chunk_grad(j1 - j0, &cc, &targets(*c0, *c1), j0, m, &gmax, &gsum, &mut gc);
            for i in 0..b {
                g[i * k + c0 + j0..i * k + c0 + j1].copy_from_slice(&gc[i * (j1 - j0)..(i + 1) * (j1 - j0)]);
            }
        }
    }
    check("sharded margin softmax", &cos, &[1.0], f, &g);
}
