//! Every view equals its materialised copy computed by a naive index loop, views share storage
//! when they should, and the adjoint (gradient) of a chain of views is the naive scatter-add.
//!
//! The oracle tracks, for every element of the current (row-major) result, the flat index of
//! the base element it reads; each view is re-implemented on that map with plain index loops.

use eingrad::autograd::{grad, GradOptions};
use eingrad::{DType, Tensor};
use proptest::prelude::*;

/// A view (or copy) with concrete arguments.
#[derive(Debug, Clone)]
enum Op {
    Permute(Vec<usize>),
    Transpose(isize, isize),
    BroadcastTo(Vec<usize>),
    Narrow(isize, usize, usize),
    Slice(isize, usize, usize, usize),
    Diagonal(Vec<usize>),
    Unfold(isize, usize, usize),
    Squeeze(Option<isize>),
    Unsqueeze(isize),
    Flip(Vec<isize>),
    Reshape(Vec<usize>),
    Contiguous,
}

/// The naive model: a shape and, per row-major element, the base flat index it reads.
#[derive(Debug, Clone)]
struct Naive {
    shape: Vec<usize>,
    src: Vec<usize>,
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major flat index of a multi-index.
fn ravel(shape: &[usize], idx: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// All multi-indices of `shape` in row-major order.
fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let n = numel(shape);
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..n {
        out.push(idx.clone());
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

fn norm(d: isize, rank: usize) -> usize {
    if d < 0 {
        (d + rank as isize) as usize
    } else {
        d as usize
    }
}

impl Naive {
    fn at(&self, idx: &[usize]) -> usize {
        self.src[ravel(&self.shape, idx)]
    }
    /// Builds the result of shape `shape` whose element at `idx` reads `self` at `from(idx)`.
    fn map(&self, shape: Vec<usize>, from: impl Fn(&[usize]) -> Vec<usize>) -> Naive {
        let src = indices(&shape).iter().map(|i| self.at(&from(i))).collect();
        Naive { shape, src }
    }
    fn apply(&self, op: &Op) -> Naive {
        let r = self.shape.len();
        let s = &self.shape;
        match op {
            Op::Permute(p) => self.map(p.iter().map(|&q| s[q]).collect(), |i| {
                let mut j = vec![0; r];
                for (k, &q) in p.iter().enumerate() {
                    j[q] = i[k];
                }
                j
            }),
            Op::Transpose(a, b) => {
                let (a, b) = (norm(*a, r), norm(*b, r));
                let mut shape = s.clone();
                shape.swap(a, b);
                self.map(shape, |i| {
                    let mut j = i.to_vec();
                    j.swap(a, b);
                    j
                })
            }
            Op::BroadcastTo(shape) => {
                let lead = shape.len() - r;
                self.map(shape.clone(), |i| {
                    (0..r)
                        .map(|k| if s[k] == 1 { 0 } else { i[lead + k] })
                        .collect()
                })
            }
            Op::Narrow(d, start, len) => self.apply(&Op::Slice(*d, *start, start + len, 1)),
            Op::Slice(d, start, end, step) => {
                let d = norm(*d, r);
                let mut shape = s.clone();
                shape[d] = (end - start).div_ceil(*step);
                self.map(shape, |i| {
                    let mut j = i.to_vec();
                    j[d] = start + i[d] * step;
                    j
                })
            }
            Op::Diagonal(dims) => {
                let rest: Vec<usize> = (0..r).filter(|k| !dims.contains(k)).collect();
                let mut shape: Vec<usize> = rest.iter().map(|&k| s[k]).collect();
                shape.push(s[dims[0]]);
                self.map(shape, |i| {
                    let mut j = vec![0; r];
                    for (n, &k) in rest.iter().enumerate() {
                        j[k] = i[n];
                    }
                    for &k in dims {
                        j[k] = i[i.len() - 1];
                    }
                    j
                })
            }
            Op::Unfold(d, size, step) => {
                let d = norm(*d, r);
                let mut shape = s.clone();
                shape[d] = (s[d] - size) / step + 1;
                shape.push(*size);
                self.map(shape, |i| {
                    let mut j = i[..r].to_vec();
                    j[d] = i[d] * step + i[r];
                    j
                })
            }
            Op::Squeeze(d) => {
                let keep: Vec<usize> = match d {
                    Some(d) => {
                        let d = norm(*d, r);
                        (0..r).filter(|&k| k != d || s[k] != 1).collect()
                    }
                    None => (0..r).filter(|&k| s[k] != 1).collect(),
                };
                self.map(keep.iter().map(|&k| s[k]).collect(), |i| {
                    let mut j = vec![0; r];
                    for (n, &k) in keep.iter().enumerate() {
                        j[k] = i[n];
                    }
                    j
                })
            }
            Op::Unsqueeze(d) => {
                let d = norm(*d, r + 1);
                let mut shape = s.clone();
                shape.insert(d, 1);
                self.map(shape, |i| {
                    let mut j = i.to_vec();
                    j.remove(d);
                    j
                })
            }
            Op::Flip(dims) => {
                let dims: Vec<usize> = dims.iter().map(|&d| norm(d, r)).collect();
                self.map(s.clone(), |i| {
                    let mut j = i.to_vec();
                    for &d in &dims {
                        j[d] = s[d] - 1 - i[d];
                    }
                    j
                })
            }
            Op::Reshape(shape) => Naive {
                shape: shape.clone(),
                src: self.src.clone(),
            },
            Op::Contiguous => self.clone(),
        }
    }
}

fn run(t: &Tensor, op: &Op) -> Tensor {
    let r = match op {
        Op::Permute(p) => t.permute(p),
        Op::Transpose(a, b) => t.transpose(*a, *b),
        Op::BroadcastTo(s) => t.broadcast_to(s),
        Op::Narrow(d, s, l) => t.narrow(*d, *s, *l),
        Op::Slice(d, s, e, st) => t.slice(*d, *s, *e, *st),
        Op::Diagonal(d) => t.diagonal(d),
        Op::Unfold(d, s, st) => t.unfold(*d, *s, *st),
        Op::Squeeze(d) => t.squeeze(*d),
        Op::Unsqueeze(d) => t.unsqueeze(*d),
        Op::Flip(d) => t.flip(d),
        Op::Reshape(s) => t.reshape(s),
        Op::Contiguous => t.contiguous(),
    };
    r.unwrap_or_else(|e| panic!("{op:?} on shape {:?}: {e}", t.dims()))
}

/// A tiny deterministic generator so that op arguments can depend on the current shape.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        if n == 0 {
            0
        } else {
            ((self.0 >> 33) % n as u64) as usize
        }
    }
    fn signed_dim(&mut self, d: usize, rank: usize) -> isize {
        if self.next(2) == 0 {
            d as isize
        } else {
            d as isize - rank as isize
        }
    }
}

/// Turns a random code into an op valid for `shape` (None when that kind does not apply).
fn make_op(kind: u8, rng: &mut Lcg, shape: &[usize]) -> Option<Op> {
    let r = shape.len();
    let n = numel(shape);
    Some(match kind % 12 {
        0 => {
            let mut p: Vec<usize> = (0..r).collect();
            for i in (1..r).rev() {
                p.swap(i, rng.next(i + 1));
            }
            Op::Permute(p)
        }
        1 if r >= 1 => {
            let (a, b) = (rng.next(r), rng.next(r));
            Op::Transpose(rng.signed_dim(a, r), rng.signed_dim(b, r))
        }
        2 => {
            let mut s: Vec<usize> = (0..rng.next(3)).map(|_| 1 + rng.next(3)).collect();
            for &d in shape {
                s.push(if d == 1 { 1 + rng.next(3) } else { d });
            }
            if numel(&s) > 400 || s.len() > 6 {
                return None;
            }
            Op::BroadcastTo(s)
        }
        3 if r >= 1 => {
            let d = rng.next(r);
            let start = rng.next(shape[d] + 1);
            let len = rng.next(shape[d] - start + 1);
            Op::Narrow(rng.signed_dim(d, r), start, len)
        }
        4 if r >= 1 => {
            let d = rng.next(r);
            let start = rng.next(shape[d] + 1);
            let end = start + rng.next(shape[d] - start + 1);
            Op::Slice(rng.signed_dim(d, r), start, end, 1 + rng.next(3))
        }
        5 if r >= 2 => {
            // two or three distinct dims of one size
            let a = rng.next(r);
            let mut dims = vec![a];
            let mut others: Vec<usize> =
                (0..r).filter(|&k| k != a && shape[k] == shape[a]).collect();
            if others.is_empty() {
                return None;
            }
            let take = 1 + rng.next(others.len().min(2));
            for _ in 0..take {
                dims.push(others.remove(rng.next(others.len())));
            }
            Op::Diagonal(dims)
        }
        6 if r >= 1 => {
            let d = rng.next(r);
            if shape[d] == 0 {
                return None;
            }
            let size = 1 + rng.next(shape[d]);
            Op::Unfold(rng.signed_dim(d, r), size, 1 + rng.next(3))
        }
        7 => {
            if r >= 1 && rng.next(2) == 0 {
                let d = rng.next(r);
                Op::Squeeze(Some(rng.signed_dim(d, r)))
            } else {
                Op::Squeeze(None)
            }
        }
        8 if r < 6 => {
            let d = rng.next(r + 1);
            Op::Unsqueeze(rng.signed_dim(d, r + 1))
        }
        9 if r >= 1 => {
            let mut dims = Vec::new();
            for d in 0..r {
                if rng.next(2) == 0 {
                    dims.push(rng.signed_dim(d, r));
                }
            }
            Op::Flip(dims)
        }
        10 => {
            // a random factorisation of numel, with occasional size-1 dims
            let mut left = n;
            let mut s = Vec::new();
            if n == 0 {
                s = vec![rng.next(3) + 1, 0, rng.next(2) + 1];
                s.truncate(1 + rng.next(3));
                if !s.contains(&0) {
                    s.push(0);
                }
            } else {
                while left > 1 && s.len() < 5 {
                    let divs: Vec<usize> = (2..=left).filter(|k| left.is_multiple_of(*k)).collect();
                    let f = divs[rng.next(divs.len())];
                    s.push(f);
                    left /= f;
                    if rng.next(4) == 0 {
                        s.push(1);
                    }
                }
                if left > 1 {
                    s.push(left);
                }
            }
            for i in (1..s.len()).rev() {
                let j = rng.next(i + 1);
                s.swap(i, j);
            }
            Op::Reshape(s)
        }
        11 => Op::Contiguous,
        _ => return None,
    })
}

/// Brute force: does a strided layout of `shape` exist that reads exactly the storage offsets
/// `offsets` (row-major order)? That is when `reshape` can be a view.
fn viewable(offsets: &[isize], shape: &[usize]) -> bool {
    if offsets.is_empty() {
        return true;
    }
    let mut strides = vec![0isize; shape.len()];
    for d in 0..shape.len() {
        if shape[d] > 1 {
            let mut e = vec![0usize; shape.len()];
            e[d] = 1;
            strides[d] = offsets[ravel(shape, &e)] - offsets[0];
        }
    }
    indices(shape).iter().enumerate().all(|(k, i)| {
        offsets[k]
            == offsets[0]
                + i.iter()
                    .zip(&strides)
                    .map(|(&a, &b)| a as isize * b)
                    .sum::<isize>()
    })
}

/// Storage offsets a tensor reads, in row-major order (from its public layout).
fn storage_offsets(t: &Tensor) -> Vec<isize> {
    let l = t.layout();
    indices(l.shape())
        .iter()
        .map(|i| {
            l.offset() as isize
                + i.iter()
                    .zip(l.strides())
                    .map(|(&a, &b)| a as isize * b)
                    .sum::<isize>()
        })
        .collect()
}

fn shape_strategy() -> impl Strategy<Value = Vec<usize>> {
    // sizes 1..=4 mostly, sometimes 0
    prop::collection::vec(prop_oneof![9 => 1usize..=4, 1 => Just(0usize)], 0..=4)
}

/// Replays the ops and checks values, storage sharing and (for non-empty results) the
/// gradient.
fn check_chain(
    shape: &[usize],
    codes: &[(u8, u64)],
    permute_base: bool,
) -> std::result::Result<(), TestCaseError> {
    let n = numel(shape);
    let data: Vec<f64> = (0..n).map(|i| i as f64 * 0.5 - 3.0).collect();
    let base = Tensor::from_f64s(&data, shape, DType::F64).unwrap();
    let mut t = base.clone();
    let mut naive = Naive {
        shape: shape.to_vec(),
        src: (0..n).collect(),
    };
    let mut ops = Vec::new();
    if permute_base && shape.len() >= 2 {
        let mut p: Vec<usize> = (0..shape.len()).collect();
        p.reverse();
        ops.push(Op::Permute(p));
    }
    let pre = std::mem::take(&mut ops);
    for step in 0..pre.len() + codes.len() {
        let op = match pre.get(step) {
            Some(op) => op.clone(),
            None => {
                let (kind, seed) = codes[step - pre.len()];
                match make_op(kind, &mut Lcg(seed), &naive.shape) {
                    Some(op) => op,
                    None => continue,
                }
            }
        };
        let next_naive = naive.apply(&op);
        if numel(&next_naive.shape) > 400 {
            continue; // keep shapes small
        }
        let before = storage_offsets(&t);
        let was_contiguous = t.is_contiguous();
        let next = run(&t, &op);
        prop_assert_eq!(next.dims(), &next_naive.shape[..], "shape after {:?}", op);
        let want: Vec<f64> = next_naive.src.iter().map(|&k| data[k]).collect();
        prop_assert_eq!(next.to_vec_f64(), want.clone(), "values after {:?}", op);
        // the materialised copy is contiguous and equal
        let c = next.contiguous().unwrap();
        prop_assert!(c.is_contiguous());
        prop_assert_eq!(c.to_vec_f64(), want, "contiguous() after {:?}", op);
        // storage sharing
        let shares = next.shares_storage_with(&base);
        match &op {
            Op::Contiguous => {
                prop_assert_eq!(
                    shares,
                    was_contiguous && t.shares_storage_with(&base),
                    "contiguous() of {:?}",
                    t.layout()
                );
            }
            Op::Reshape(s) => {
                // (an empty tensor may be reshaped either way: nothing is read)
                if t.shares_storage_with(&base) && !before.is_empty() {
                    if was_contiguous {
                        prop_assert!(shares, "reshape of a contiguous tensor must be a view");
                    }
                    let can = viewable(&before, s);
                    prop_assert_eq!(
                        shares,
                        can || next.dims() == t.dims(),
                        "reshape {:?} -> {:?} viewable: {}",
                        t.layout(),
                        s,
                        can
                    );
                }
            }
            _ => prop_assert_eq!(
                shares,
                t.shares_storage_with(&base),
                "{:?} must be a view",
                op
            ),
        }
        t = next;
        naive = next_naive;
        ops.push(op);
    }

    // Gradient of sum(chain(x) · u) is the scatter-add of u along the naive map.
    let m = numel(&naive.shape);
    let x = base.detach().requires_grad_(true);
    let mut y = x.clone();
    for op in &ops {
        y = run(&y, op);
    }
    let u: Vec<f64> = (0..m).map(|i| ((i * 7 % 11) as f64) - 4.0).collect();
    // u is a leaf too, so that the gradient (linear in u) can be differentiated again
    let ut = Tensor::from_f64s(&u, &naive.shape, DType::F64)
        .unwrap()
        .requires_grad_(true);
    let mut want = vec![0.0; n];
    for (k, &s) in naive.src.iter().enumerate() {
        want[s] += u[k];
    }
    if y.requires_grad() {
        let g = grad(
            &[y.clone()],
            &[x.clone()],
            Some(&[ut.clone()]),
            GradOptions::default().create_graph(true).allow_unused(true),
        )
        .unwrap()
        .remove(0)
        .unwrap_or_else(|| x.zeros_like().unwrap());
        prop_assert_eq!(g.dims(), shape);
        prop_assert_eq!(g.to_vec_f64(), want, "gradient through {:?}", ops);
        // The adjoint's adjoint is the chain again: d/du <g(u), w> = chain(w).
        if m > 0 && n > 0 {
            let wv: Vec<f64> = (0..n).map(|i| 1.0 + 0.25 * i as f64).collect();
            let w = Tensor::from_f64s(&wv, shape, DType::F64).unwrap();
            let s = g.mul(&w).unwrap().sum_all().unwrap();
            prop_assert!(
                s.requires_grad(),
                "the gradient of {:?} is not differentiable",
                ops
            );
            let h = grad(&[s], &[ut.clone()], None, GradOptions::default())
                .unwrap()
                .remove(0)
                .unwrap();
            let chain_w: Vec<f64> = naive.src.iter().map(|&k| wv[k]).collect();
            prop_assert_eq!(h.to_vec_f64(), chain_w, "second order through {:?}", ops);
        }
    } else {
        prop_assert!(want.iter().all(|&v| v == 0.0));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn view_chains_match_naive_index_loops(
        shape in shape_strategy(),
        codes in prop::collection::vec((0u8..12, any::<u64>()), 1..4),
        permute_base in any::<bool>(),
    ) {
        check_chain(&shape, &codes, permute_base)?;
    }

    #[test]
    fn reshape_of_permuted_is_a_view_exactly_when_strides_allow(
        shape in prop::collection::vec(1usize..=4, 2..=4),
        seed in any::<u64>(),
    ) {
        // permute, then reshape to a random factorisation
        let mut codes = vec![(0u8, seed)];
        codes.push((10u8, seed.rotate_left(17)));
        check_chain(&shape, &codes, false)?;
    }
}

/// Views of each kind share storage with their base; the gradient flows through the adjoint
/// without touching the base's values.
#[test]
fn single_views_share_storage() {
    let base = Tensor::arange(0.0, 24.0, 1.0, DType::F32)
        .unwrap()
        .reshape(&[2, 3, 4])
        .unwrap();
    let sq = Tensor::arange(0.0, 9.0, 1.0, DType::F32)
        .unwrap()
        .reshape(&[3, 3])
        .unwrap();
    let views = [
        base.permute(&[2, 0, 1]).unwrap(),
        base.transpose(0, 2).unwrap(),
        base.narrow(1, 1, 2).unwrap(),
        base.slice(2, 1, 4, 2).unwrap(),
        base.unfold(2, 2, 1).unwrap(),
        base.flip(&[0, -1]).unwrap(),
        base.unsqueeze(0).unwrap(),
        base.narrow(0, 0, 1).unwrap().squeeze(Some(0)).unwrap(),
        base.reshape(&[6, 4]).unwrap(),
        base.view(&[4, -1]).unwrap(),
        base.flatten().unwrap(),
        base.narrow(2, 0, 1)
            .unwrap()
            .broadcast_to(&[5, 2, 3, 7])
            .unwrap(),
        sq.diagonal(&[0, 1]).unwrap(),
        sq.t().unwrap(),
    ];
    for (i, v) in views.iter().enumerate() {
        assert!(
            v.shares_storage_with(&base) || v.shares_storage_with(&sq),
            "view {i} copied"
        );
        assert!(!v.shares_storage_with(&Tensor::zeros(&[1], DType::F32).unwrap()));
    }
    assert_eq!(
        sq.diagonal(&[0, 1]).unwrap().to_vec::<f32>().unwrap(),
        vec![0.0, 4.0, 8.0]
    );
    assert_eq!(sq.diagonal(&[0, 1]).unwrap().strides(), &[4]);
    // a copy does not share
    assert!(!base
        .permute(&[2, 0, 1])
        .unwrap()
        .contiguous()
        .unwrap()
        .shares_storage_with(&base));
    assert!(base.contiguous().unwrap().shares_storage_with(&base));
}

/// A reshape that no strides can express copies; one that can is a view.
#[test]
fn reshape_of_non_viewable_layout_copies() {
    let m = Tensor::arange(0.0, 24.0, 1.0, DType::F64)
        .unwrap()
        .reshape(&[4, 6])
        .unwrap();
    let t = m.t().unwrap(); // (6, 4), strides (1, 6)
    let flat = t.reshape(&[24]).unwrap();
    assert!(!flat.shares_storage_with(&m));
    let want: Vec<f64> = (0..24).map(|k| ((k % 4) * 6 + k / 4) as f64).collect();
    assert_eq!(flat.to_vec::<f64>().unwrap(), want);
    let split = t.reshape(&[2, 3, 4]).unwrap();
    assert!(split.shares_storage_with(&m));
    assert_eq!(split.strides(), &[3, 1, 6]);
    // a broadcast dim cannot be merged with a real one
    let b = Tensor::arange(0.0, 3.0, 1.0, DType::F64)
        .unwrap()
        .broadcast_to(&[2, 3])
        .unwrap();
    let r = b.reshape(&[6]).unwrap();
    assert!(!r.shares_storage_with(&b));
    assert_eq!(
        r.to_vec::<f64>().unwrap(),
        vec![0.0, 1.0, 2.0, 0.0, 1.0, 2.0]
    );
    // a step slice keeps its stride under a reshape that only splits
    let s = Tensor::arange(0.0, 12.0, 1.0, DType::F64)
        .unwrap()
        .slice(0, 0, 12, 2)
        .unwrap();
    let r = s.reshape(&[2, 3]).unwrap();
    assert!(r.shares_storage_with(&s));
    assert_eq!(
        r.to_vec::<f64>().unwrap(),
        vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    );
    // errors name the op
    assert!(m
        .reshape(&[5, 5])
        .unwrap_err()
        .to_string()
        .contains("reshape"));
    assert!(m.view(&[-1, -1]).is_err());
}

#[test]
fn invalid_views_are_errors() {
    let t = Tensor::zeros(&[2, 3], DType::F32).unwrap();
    let errs = [
        t.permute(&[0, 0]).map(|_| ()),
        t.permute(&[0]).map(|_| ()),
        t.transpose(0, 2).map(|_| ()),
        t.broadcast_to(&[3, 3]).map(|_| ()),
        t.broadcast_to(&[3]).map(|_| ()),
        t.narrow(1, 2, 2).map(|_| ()),
        t.slice(0, 0, 2, 0).map(|_| ()),
        t.slice(0, 2, 1, 1).map(|_| ()),
        t.diagonal(&[0, 1]).map(|_| ()),
        t.diagonal(&[0]).map(|_| ()),
        t.unfold(1, 4, 1).map(|_| ()),
        t.unfold(1, 2, 0).map(|_| ()),
        t.unsqueeze(4).map(|_| ()),
        t.flip(&[2]).map(|_| ()),
        t.squeeze(Some(-3)).map(|_| ()),
    ];
    for (i, e) in errs.into_iter().enumerate() {
        assert!(e.is_err(), "case {i} should be an error");
    }
    let e = t.transpose(0, 5).unwrap_err().to_string();
    assert!(e.contains("transpose") && e.contains('5'), "{e}");
}
