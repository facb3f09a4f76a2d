//! Argument checks every backend makes before it launches anything, so a bad call gets
//! the same error naming the op and the shapes on every device.

use super::ConvParams;
use crate::kernels::batchnorm::BnGeom;
use crate::kernels::conv::ConvGeom;
use crate::{ensure, DType, Result, Tensor};

pub fn same_shape(op: &str, a: &Tensor, b: &Tensor) -> Result<()> {
    ensure!(a.shape() == b.shape(), op, "shapes differ: {:?} and {:?}", a.shape(), b.shape());
    Ok(())
}

pub fn vector(op: &str, what: &str, t: &Tensor, len: usize) -> Result<()> {
    ensure!(t.shape() == [len], op, "{what} must have shape [{len}], got {:?}", t.shape());
    Ok(())
}

pub fn single(op: &str, t: &Tensor) -> Result<()> {
    ensure!(t.numel() == 1, op, "expected a single-element (0-d) tensor, got shape {:?}", t.shape());
    Ok(())
}

pub fn rows(op: &str, t: &Tensor) -> Result<(usize, usize)> {
    ensure!(t.shape().len() == 2, op, "expected a 2-d [rows, cols] tensor, got shape {:?}", t.shape());
    Ok((t.shape()[0], t.shape()[1]))
}

pub fn check_labels(op: &str, labels: &[i32], r: usize, k: usize) -> Result<Vec<usize>> {
    ensure!(labels.len() == r, op, "{} labels for {r} rows of logits", labels.len());
    labels
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            ensure!(l >= 0 && (l as usize) < k, op, "label {l} at index {i} is outside [0, {k})");
            Ok(l as usize)
        })
        .collect()
}

pub fn check_rows(op: &str, idx: &[i32], n: usize) -> Result<Vec<usize>> {
    idx.iter()
        .enumerate()
        .map(|(i, &r)| {
            ensure!(r >= 0 && (r as usize) < n, op, "row index {r} at position {i} is outside [0, {n})");
            Ok(r as usize)
        })
        .collect()
}

/// `[N, C, S]` view of a tensor with channels in dimension 1.
pub fn ncs(op: &str, x: &Tensor, channels: usize) -> Result<(usize, usize, usize)> {
    let g = BnGeom::new(op, x.shape(), channels)?;
    Ok((g.n, g.c, g.s))
}

/// The geometry of a conv whose output gradient is `gy`, checked against it.
pub fn backward_geom(gy: &Tensor, x_shape: &[usize], w_shape: &[usize], p: ConvParams) -> Result<ConvGeom> {
    let g = ConvGeom::new(x_shape, w_shape, p.stride, p.pad)?;
    ensure!(
        gy.shape() == g.out_shape(),
        "conv2d_backward",
        "gradient shape {:?} differs from output shape {:?}",
        gy.shape(),
        g.out_shape()
    );
    Ok(g)
}

pub fn check_prob(op: &str, p: f64) -> Result<()> {
    ensure!((0.0..1.0).contains(&p), op, "probability must be in [0, 1), got {p}");
    Ok(())
}

pub fn batch_norm_geom(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    training: bool,
) -> Result<BnGeom> {
    let op = "batch_norm";
    let c = weight.numel();
    let g = BnGeom::new(op, x.shape(), c)?;
    for (what, t) in [("weight", weight), ("bias", bias), ("running_mean", running_mean), ("running_var", running_var)]
    {
        vector(op, what, t, c)?;
    }
    ensure!(!running_mean.shares_storage(running_var), op, "running_mean and running_var share storage");
    ensure!(
        !training || g.n * g.s > 1,
        op,
        "training needs more than one value per channel, got input shape {:?}",
        x.shape()
    );
    Ok(g)
}

pub fn batch_norm_backward_geom(
    gy: &Tensor,
    x: &Tensor,
    weight: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
) -> Result<BnGeom> {
    let op = "batch_norm_backward";
    let g = BnGeom::new(op, x.shape(), weight.numel())?;
    same_shape(op, gy, x)?;
    vector(op, "mean", mean, g.c)?;
    vector(op, "invstd", invstd, g.c)?;
    Ok(g)
}

/// (m, k, n) of `op(a)·op(b)`.
pub fn matmul_dims(a: &Tensor, b: &Tensor, trans_a: bool, trans_b: bool) -> Result<(usize, usize, usize)> {
    let op = "matmul";
    let ((ar, ac), (br, bc)) = (rows(op, a)?, rows(op, b)?);
    let (m, k) = if trans_a { (ac, ar) } else { (ar, ac) };
    let (kb, n) = if trans_b { (bc, br) } else { (br, bc) };
    ensure!(
        k == kb,
        op,
        "inner dimensions differ: {:?}{} · {:?}{}",
        a.shape(),
        if trans_a { "ᵀ" } else { "" },
        b.shape(),
        if trans_b { "ᵀ" } else { "" }
    );
    Ok((m, k, n))
}

/// (batch, in, out) of `x·wᵀ + bias`.
pub fn linear_dims(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<(usize, usize, usize)> {
    let op = "linear";
    let ((bn, i), (o, wi)) = (rows(op, x)?, rows(op, w)?);
    ensure!(i == wi, op, "input shape {:?} has {i} features but weight shape {:?} expects {wi}", x.shape(), w.shape());
    if let Some(b) = bias {
        vector(op, "bias", b, o)?;
    }
    Ok((bn, i, o))
}

/// Checked row indices, the output shape and the row width of a gather.
pub fn index_rows_args(x: &Tensor, idx: &[i32]) -> Result<(Vec<usize>, Vec<usize>, usize)> {
    let op = "index_rows";
    ensure!(!x.shape().is_empty(), op, "expected at least one dimension, got a 0-d tensor");
    let n = x.shape()[0];
    let ix = check_rows(op, idx, n)?;
    let mut shape = x.shape().to_vec();
    shape[0] = ix.len();
    Ok((ix, shape, x.numel() / n.max(1)))
}

/// Checked row indices, the output shape and the row width of a scatter into `rows` rows.
pub fn scatter_rows_args(x: &Tensor, idx: &[i32], rows: usize) -> Result<(Vec<usize>, Vec<usize>, usize)> {
    let op = "scatter_rows";
    ensure!(!x.shape().is_empty(), op, "expected at least one dimension, got a 0-d tensor");
    ensure!(idx.len() == x.shape()[0], op, "{} indices for {} rows of shape {:?}", idx.len(), x.shape()[0], x.shape());
    let ix = check_rows(op, idx, rows)?;
    let mut shape = x.shape().to_vec();
    shape[0] = rows;
    Ok((ix, shape, x.numel() / x.shape()[0].max(1)))
}

/// Checked row indices and the row width of an in-place copy of `src`'s rows into `dst`.
pub fn copy_rows_args(dst: &Tensor, idx: &[i32], src: &Tensor) -> Result<(Vec<usize>, usize)> {
    let op = "copy_rows";
    ensure!(!dst.shape().is_empty() && !src.shape().is_empty(), op, "expected at least one dimension each");
    ensure!(
        dst.shape()[1..] == src.shape()[1..],
        op,
        "rows of {:?} into rows of {:?}: the row shapes differ",
        src.shape(),
        dst.shape()
    );
    ensure!(
        idx.len() == src.shape()[0],
        op,
        "{} indices for {} rows of shape {:?}",
        idx.len(),
        src.shape()[0],
        src.shape()
    );
    ensure!(!dst.shares_storage(src), op, "source and destination share storage");
    Ok((check_rows(op, idx, dst.shape()[0])?, src.numel() / src.shape()[0].max(1)))
}

/// The batch of the sharded margin softmax's per-row vectors: all `[B]`, B > 0.
pub fn margin_rows(op: &str, vectors: &[&Tensor]) -> Result<usize> {
    let b = vectors[0].shape().first().copied().unwrap_or(0);
    ensure!(b > 0, op, "per-row vectors must be [B] with B > 0, got shape {:?}", vectors[0].shape());
    vectors.iter().try_for_each(|v| vector(op, "each per-row vector", v, b))?;
    Ok(b)
}

/// (B, w) of a chunk `cos [B, w]` with B targets (a scored column, or −1) and `[B]` vectors.
pub fn margin_chunk_args(op: &str, cos: &Tensor, target: &[i32], vectors: &[&Tensor]) -> Result<(usize, usize)> {
    let (b, w) = rows(op, cos)?;
    ensure!(target.len() == b, op, "{} targets for {b} rows of cosines", target.len());
    if let Some(i) = target.iter().position(|&t| t < -1) {
        return Err(crate::Error::new(op, format!("target {} at index {i}: expected a column or -1", target[i])));
    }
    ensure!(margin_rows(op, vectors)? == b, op, "per-row vectors of {:?} for {b} rows", vectors[0].shape());
    Ok((b, w))
}

/// (N, C, S) of a tensor summed per channel.
pub fn channel_dims(op: &str, x: &Tensor) -> Result<(usize, usize, usize)> {
    ensure!(x.shape().len() >= 2, op, "expected [N,C,...], got shape {:?}", x.shape());
    ncs(op, x, x.shape()[1])
}

/// (rows, classes, labels) of a non-empty `[R, K]` tensor with one label per row.
pub fn labelled_rows(op: &str, t: &Tensor, labels: &[i32]) -> Result<(usize, usize, Vec<usize>)> {
    let (r, k) = rows(op, t)?;
    ensure!(r > 0, op, "no rows in a tensor of shape {:?}", t.shape());
    Ok((r, k, check_labels(op, labels, r, k)?))
}

pub fn sgd_args(param: &Tensor, grad: &Tensor, buf: &Tensor) -> Result<()> {
    let op = "sgd_step";
    same_shape(op, param, grad)?;
    same_shape(op, param, buf)?;
    ensure!(
        !param.shares_storage(grad) && !param.shares_storage(buf) && !grad.shares_storage(buf),
        op,
        "parameter, gradient and momentum buffer must be distinct tensors"
    );
    Ok(())
}

/// The one dtype of a product's operands (conv, matmul, linear take f32, f16 or bf16);
/// a bias is added in f32, so it needs f32 operands.
pub fn product_dtype(op: &str, operands: &[&Tensor], bias: Option<&Tensor>) -> Result<DType> {
    let d = operands[0].dtype();
    ensure!(
        operands.iter().all(|t| t.dtype() == d),
        op,
        "operand dtypes differ: {}",
        operands.iter().map(|t| t.dtype().name()).collect::<Vec<_>>().join(", ")
    );
    ensure!(
        bias.is_none_or(|b| d == DType::F32 && b.dtype() == DType::F32),
        op,
        "a bias needs f32 operands (got {}): add it after casting the product to f32",
        d.name()
    );
    Ok(d)
}
