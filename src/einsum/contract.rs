//! The one recorded multilinear op: a pairwise contraction of two tensors with distinct
//! labels, lowered to broadcasting multiply or one strided batched GEMM. Its VJP with
//! respect to each operand is again a pairwise contraction.

use crate::autograd::{record1, Rule};

/// The label a batched backward gives the leading batch of cotangents (a private-use code
/// point: parsed patterns use ASCII letters, and ellipsis dims get labels from U+0100 up).
const BATCH_LABEL: char = '\u{E000}';
use crate::dtype::Float;
use crate::error::Result;
use crate::kernels::gemm::{batched_gemm, MatView};
use crate::kernels::strided::par_gather;
use crate::layout::{checked_numel, Layout};
use crate::tensor::Tensor;
use crate::with_dtype;

/// Positions of `labels` in `of`.
fn positions(of: &[char], labels: &[char]) -> Vec<usize> {
    labels
        .iter()
        .map(|l| of.iter().position(|x| x == l).expect("label present"))
        .collect()
}

/// Sums away the labels of `t` that are not in `keep`; returns the tensor and its labels.
pub(crate) fn sum_labels(
    t: &Tensor,
    labels: &[char],
    keep: &[char],
) -> Result<(Tensor, Vec<char>)> {
    let dims: Vec<isize> = (0..labels.len())
        .filter(|&i| !keep.contains(&labels[i]))
        .map(|i| i as isize)
        .collect();
    if dims.is_empty() {
        return Ok((t.clone(), labels.to_vec()));
    }
    let rest: Vec<char> = labels
        .iter()
        .copied()
        .filter(|l| keep.contains(l))
        .collect();
    Ok((t.sum(&dims, false)?, rest))
}

/// Permutes `t` (with distinct `labels`) into the label order `to`.
pub(crate) fn permute_to(t: &Tensor, labels: &[char], to: &[char]) -> Result<Tensor> {
    if labels == to {
        return Ok(t.clone());
    }
    t.permute(&positions(labels, to))
}

/// Contracts `a` (labels `la`) with `b` (labels `lb`), keeping the labels in `keep` and
/// summing all others. Labels within each operand are distinct. Returns the result and its
/// labels, ordered batch (in both) ++ a-only ++ b-only.
pub(crate) fn contract_pair(
    a: &Tensor,
    la: &[char],
    b: &Tensor,
    lb: &[char],
    keep: &[char],
) -> Result<(Tensor, Vec<char>)> {
    // Labels only in one operand and not kept are summed there first.
    let keep_a: Vec<char> = keep.iter().chain(lb.iter()).copied().collect();
    let keep_b: Vec<char> = keep.iter().chain(la.iter()).copied().collect();
    let (a, la) = sum_labels(a, la, &keep_a)?;
    let (b, lb) = sum_labels(b, lb, &keep_b)?;
    let batch: Vec<char> = la
        .iter()
        .copied()
        .filter(|l| lb.contains(l) && keep.contains(l))
        .collect();
    let summed: Vec<char> = la
        .iter()
        .copied()
        .filter(|l| lb.contains(l) && !keep.contains(l))
        .collect();
    let m: Vec<char> = la.iter().copied().filter(|l| !lb.contains(l)).collect();
    let n: Vec<char> = lb.iter().copied().filter(|l| !la.contains(l)).collect();
    let out_labels: Vec<char> = batch.iter().chain(&m).chain(&n).copied().collect();
    let size = |t: &Tensor, ls: &[char], l: char| {
        t.dims()[ls.iter().position(|&x| x == l).expect("label")]
    };
    let msize: usize = m.iter().map(|&l| size(&a, &la, l)).product();
    let nsize: usize = n.iter().map(|&l| size(&b, &lb, l)).product();
    if summed.is_empty() || msize * nsize == 1 {
        // Broadcasting multiply (outer/Hadamard products, batched dots), then sum.
        let full: Vec<char> = batch
            .iter()
            .chain(&m)
            .chain(&n)
            .chain(&summed)
            .copied()
            .collect();
        let align = |t: &Tensor, ls: &[char]| -> Result<Tensor> {
            let present: Vec<char> = full.iter().copied().filter(|l| ls.contains(l)).collect();
            let p = permute_to(t, ls, &present)?;
            let shape: Vec<usize> = full
                .iter()
                .map(|l| if ls.contains(l) { size(t, ls, *l) } else { 1 })
                .collect();
            p.reshape(&shape)
        };
        let prod = align(&a, &la)?.mul(&align(&b, &lb)?)?;
        let (r, _) = sum_labels(&prod, &full, &out_labels)?;
        return Ok((r, out_labels));
    }
    let out = gemm_contract(&a, &la, &b, &lb, &batch, &m, &n, &summed)?;
    // Bilinear: each operand's VJP is again a pairwise contraction of g with the other
    // operand (with a leading batch of cotangents, one more label carried through); the JVP
    // ṫa·b + a·ṫb follows.
    let out = record1("einsum", &[&a, &b], out, |_| {
        let (la, lb, lo, keep) = (la.clone(), lb.clone(), out_labels.clone(), keep.to_vec());
        Rule::Bilinear {
            a: a.clone(),
            b: b.clone(),
            apply: Box::new({
                let (la, lb) = (la.clone(), lb.clone());
                move |x, y| Ok(contract_pair(x, &la, y, &lb, &keep)?.0)
            }),
            transpose: Box::new(move |i, g, other, batched| {
                let (mine, other_l) = if i == 0 { (&la, &lb) } else { (&lb, &la) };
                let with_batch = |ls: &[char]| -> Vec<char> {
                    let lead = batched.then_some(BATCH_LABEL);
                    lead.into_iter().chain(ls.iter().copied()).collect()
                };
                let keep = with_batch(mine);
                let (r, l) = contract_pair(g, &with_batch(&lo), other, other_l, &keep)?;
                permute_to(&r, &l, &keep)
            }),
        }
    });
    Ok((out, out_labels))
}

/// A 3-d (batch, rows, cols) view of `t` grouping the dims of the given label groups, without
/// copying when strides allow.
fn as_matrix<T: Float>(
    t: &Tensor,
    labels: &[char],
    groups: [&[char]; 3],
    data: &mut Option<Vec<T>>,
) -> Result<(Layout, [usize; 3])> {
    let order: Vec<usize> = groups.iter().flat_map(|g| positions(labels, g)).collect();
    let l = t.layout().permute(&order).expect("valid permutation");
    let sizes: [usize; 3] = std::array::from_fn(|i| {
        groups[i]
            .iter()
            .map(|&c| t.dims()[labels.iter().position(|&x| x == c).expect("label")])
            .product()
    });
    if let Some(v) = l.reshape_view(&sizes) {
        return Ok((v, sizes));
    }
    // A broadcast operand may be far larger than its storage: the copy can fail.
    let storage = t.storage();
    let src = storage.as_slice::<T>().expect("dtype");
    *data = Some(par_gather(
        "einsum",
        src,
        l.shape(),
        l.strides(),
        l.offset(),
    )?);
    Ok((Layout::contiguous(&sizes), sizes))
}

#[allow(clippy::too_many_arguments)]
fn gemm_contract(
    a: &Tensor,
    la: &[char],
    b: &Tensor,
    lb: &[char],
    batch: &[char],
    m: &[char],
    n: &[char],
    k: &[char],
) -> Result<Tensor> {
    let mut out_shape: Vec<usize> = Vec::new();
    for &l in batch.iter().chain(m) {
        out_shape.push(a.dims()[la.iter().position(|&x| x == l).expect("label")]);
    }
    for &l in n {
        out_shape.push(b.dims()[lb.iter().position(|&x| x == l).expect("label")]);
    }
    let len = checked_numel("einsum", &out_shape)?;
    Ok(with_dtype!(a.dtype(), T => {
        let (mut ca, mut cb) = (None::<Vec<T>>, None::<Vec<T>>);
        let (va, [bs, ms, ks]) = as_matrix::<T>(a, la, [batch, m, k], &mut ca)?;
        let (vb, [_, _, ns]) = as_matrix::<T>(b, lb, [batch, k, n], &mut cb)?;
        let (sa, sb) = (a.storage(), b.storage());
        let pa: &[T] = match &ca { Some(v) => v, None => sa.as_slice::<T>().expect("dtype") };
        let pb: &[T] = match &cb { Some(v) => v, None => sb.as_slice::<T>().expect("dtype") };
        debug_assert_eq!(len, bs * ms * ns);
        let mut dst: Vec<T> = crate::storage::try_buffer("einsum", &out_shape, len)?;
        let view = |l: &Layout| MatView { offset: l.offset(), batch_stride: l.strides()[0], row_stride: l.strides()[1], col_stride: l.strides()[2] };
        let d = MatView { offset: 0, batch_stride: (ms * ns) as isize, row_stride: ns as isize, col_stride: 1 };
        batched_gemm(bs, ms, ns, ks, &mut dst.spare_capacity_mut()[..len], d, pa, view(&va), pb, view(&vb));
        // SAFETY: batched_gemm wrote all bs·ms·ns elements (each block fully, k = 0 included).
        unsafe { dst.set_len(len) };
        Tensor::from_buf(dst, &out_shape)
    }))
}
