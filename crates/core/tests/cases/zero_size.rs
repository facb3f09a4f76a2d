//! Every op on zero-size inputs (no rows, channels, samples or columns), shared by the CPU
//! test here and maskfr-cuda's GPU test: each result is empty, or an empty sum (zeros).

use maskfr_core::backend::device_backend;
use maskfr_core::{Backend, ConvParams, Device, Margin, SgdHyper, Tensor};

fn rnd(shape: &[usize], seed: u64) -> Tensor {
    device_backend("test", Device::Cpu).unwrap().randn(shape, 0.3, 1.5, seed, 0).unwrap()
}

/// (what, result) of every op on zero-size inputs, run on `be` with inputs made on the CPU
/// and moved by `put` (an upload for a GPU).
pub fn zero_size_results(be: &dyn Backend, put: &dyn Fn(&Tensor) -> Tensor) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    let mut keep = |what: String, ts: Vec<Tensor>| {
        out.extend(ts.into_iter().enumerate().map(|(i, t)| (format!("{what} #{i}"), t)));
    };
    let prm = ConvParams { stride: [1, 1], pad: [1, 1] };
    for (n, c, o) in [(0, 3, 4), (2, 0, 4), (2, 3, 0)] {
        let (x, w, gy) = (put(&rnd(&[n, c, 5, 5], 1)), put(&rnd(&[o, c, 3, 3], 2)), put(&rnd(&[n, o, 5, 5], 3)));
        keep(
            format!("conv n={n} c={c} o={o}"),
            vec![
                be.conv2d(&x, &w, None, prm).unwrap(),
                be.conv2d_backward_input(&gy, &w, x.shape(), prm).unwrap(),
                be.conv2d_backward_weight(&gy, &x, w.shape(), prm).unwrap(),
            ],
        );
    }
    for (n, c) in [(0, 5), (3, 0)] {
        let (x, v, gy) = (put(&rnd(&[n, c, 2, 2], 5)), put(&rnd(&[c], 6)), put(&rnd(&[n, c, 2, 2], 7)));
        let rv = be.rand_uniform(&[c], 0.5, 2.0, 8).unwrap(); // made on `be`: no move
        let bn = be.batch_norm(&x, &v, &v, &v, &rv, false, 0.1, 1e-5).unwrap();
        let (gx, gw, gb) = be.batch_norm_backward(&gy, &x, &v, &bn.mean, &bn.invstd, false).unwrap();
        let (px, pa) = be.prelu_backward(&gy, &x, &v).unwrap();
        let prelu = be.prelu(&x, &v).unwrap();
        let (sum, shifted) = (be.channel_sum(&x).unwrap(), be.add_channel(&x, &v).unwrap());
        keep(format!("per channel n={n} c={c}"), vec![bn.y, gx, gw, gb, prelu, px, pa, sum, shifted]);
    }
    for (r, d) in [(0, 6), (4, 0)] {
        let (x, gy) = (put(&rnd(&[r, d], 9)), put(&rnd(&[r, d], 10)));
        let ls = be.log_softmax(&x).unwrap();
        keep(
            format!("rows r={r} d={d}"),
            vec![
                be.l2_normalize(&x, 1e-12).unwrap(),
                be.l2_normalize_backward(&gy, &x, 1e-12).unwrap(),
                be.log_softmax_backward(&gy, &ls).unwrap(),
                ls,
                be.add(&x, &gy).unwrap(),
                be.mul(&x, &gy).unwrap(),
                be.scale(&x, 2.0).unwrap(),
                be.dropout(&x, 0.5, 3).unwrap(),
                be.sum(&x).unwrap(),
                be.sum_squares(&x).unwrap(),
                be.index_rows(&x, &[]).unwrap(),
                be.scatter_rows(&x, &vec![0; r], 1).unwrap(),
                be.expand_scalar(&be.sum(&x).unwrap(), &[0, 3], 1.0).unwrap(),
                be.matmul(&x, &gy, true, false).unwrap(),
                be.matmul(&x, &gy, false, true).unwrap(),
            ],
        );
    }
    let (p, g, b) = (put(&rnd(&[0, 3], 11)), put(&rnd(&[0, 3], 12)), put(&rnd(&[0, 3], 13)));
    be.sgd_step_all(&[[&p, &g, &b]], SgdHyper { lr: 0.1, momentum: 0.9, weight_decay: 5e-4 }, None).unwrap();
    be.copy_rows_(&p, &[], &be.full(&[0, 3], 1.0).unwrap()).unwrap();
    // A classifier chunk of no columns on fresh statistics (max −∞): nothing changes, so the
    // exp-sum and the target logit stay 0.
    let st = [be.full(&[2], f32::NEG_INFINITY).unwrap(), be.full(&[2], 0.0).unwrap(), be.full(&[2], 0.0).unwrap()];
    let m = Margin { s: 64.0, m_arc: 0.0, m_cos: 0.4 };
    be.margin_chunk_stats(&put(&rnd(&[2, 0], 14)), &[0, -1], 0, m, [&st[0], &st[1], &st[2]]).unwrap();
    let [_, sum, tlogit] = st;
    keep("margin chunk of no columns".into(), vec![sum, tlogit]);
    keep(
        "creation and in-place".into(),
        vec![p, b, be.full(&[0], 1.0).unwrap(), be.randn(&[0, 2], 0.0, 1.0, 1, 0).unwrap()],
    );
    out
}
