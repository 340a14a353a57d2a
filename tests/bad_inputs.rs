//! Bad inputs outside einsum (einsum's own table is `tests/einsum_errors.rs`): each gives an
//! `Err` naming the op and the argument at fault, never a panic, a silently wrapped shape or
//! an abort; and a fuzz that throws random, often invalid, arguments at the public ops and
//! requires every call to return (an `Err`, or an `Ok` tensor whose values can be read).

mod support;
use support::cap_address_space;

use eingrad::autograd::{grad, GradOptions};
use eingrad::func::jvp;
use eingrad::{einsum, einsum_with_sizes, Conv1dOptions, DType, Indices, Padding, Tensor};
use proptest::prelude::*;

const BIG: usize = 1 << 40;

fn x() -> Tensor {
    Tensor::randn(&[2, 3], DType::F32, 0).unwrap()
}

/// The error text of `r`, which must be an `Err`.
fn err<T>(what: &str, r: eingrad::Result<T>) -> String {
    match r {
        Ok(_) => panic!("{what}: expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn shapes_whose_element_count_overflows_are_errors_not_wrapped_counts() {
    // Counts that wrap to the data length (2^63 + 3) · 2 ≡ 6 (mod 2^64) once built tensors
    // that read past their buffer.
    let wrap = [(1usize << 63) + 3, 2];
    let cases: Vec<(&str, eingrad::Result<Tensor>, &str)> = vec![
        (
            "from_vec",
            Tensor::from_vec(vec![1.0f32; 6], &wrap),
            "more elements than memory can address",
        ),
        (
            "reshape",
            x().reshape(&wrap),
            "more elements than memory can address",
        ),
        (
            "view",
            x().view(&[-1, 1 << 62, 4]),
            "more elements than memory can address",
        ),
        (
            "broadcast_to",
            x().expand(&[BIG, BIG, 2, 3]),
            "more elements than memory can address",
        ),
        (
            "zeros",
            Tensor::zeros(&[BIG, BIG, BIG], DType::F32),
            "more elements than memory can address",
        ),
        (
            "randn",
            Tensor::randn(&[BIG, BIG], DType::F64, 1),
            "more elements than memory can address",
        ),
        (
            "eye",
            Tensor::eye(1 << 33, DType::F32),
            "more elements than memory can address",
        ),
        (
            "einsum",
            einsum_with_sizes("jk->ijkl", &[&x()], &[('i', BIG), ('l', BIG)]),
            "output shape [1099511627776, 2, 3, 1099511627776]",
        ),
        (
            "linspace",
            Tensor::linspace(0.0, 1.0, usize::MAX, DType::F32),
            "more elements than memory can address",
        ),
        (
            "arange",
            Tensor::arange(0.0, 1e300, 1e-300, DType::F32),
            "elements",
        ),
        (
            "one_hot",
            Tensor::one_hot(&[3], usize::MAX, DType::F32),
            "more elements than memory can address",
        ),
        (
            "ones",
            Tensor::ones(&[BIG, BIG], DType::F32),
            "more elements than memory can address",
        ),
        (
            "rand",
            Tensor::rand(&[BIG, BIG], DType::F32, 0),
            "more elements than memory can address",
        ),
        (
            "uniform",
            Tensor::uniform(&[BIG, BIG], -1.0, 1.0, DType::F32, 0),
            "more elements than memory can address",
        ),
    ];
    for (op, r, needle) in cases {
        let msg = err(op, r);
        assert!(msg.starts_with(op), "{op}: message names another op: {msg}");
        assert!(msg.contains(needle), "{op}: {msg}");
    }
    // A shape with a zero-size dim holds nothing, however large the other dims.
    let empty = Tensor::from_vec(Vec::<f32>::new(), &[BIG, BIG, BIG, 0]).unwrap();
    assert_eq!(empty.numel(), 0);
    // A broadcast view may be huge; only its element count must fit.
    let wide = einsum_with_sizes("jk->ijk", &[&x()], &[('i', BIG)]).unwrap();
    assert_eq!(wide.dims(), &[BIG, 2, 3]);
}

#[test]
fn allocations_that_cannot_be_had_are_errors_not_aborts() {
    // 2^61 f32 values: the count fits, the 8 EiB do not.
    let msg = err("zeros", Tensor::zeros(&[1 << 61], DType::F32));
    assert!(msg.contains("cannot be allocated"), "{msg}");
    assert!(msg.contains("[2305843009213693952]"), "{msg}");
    let msg = err("full", Tensor::full(&[1 << 30, 1 << 30], 1.0, DType::F64));
    assert!(
        msg.starts_with("full") && msg.contains("cannot be allocated"),
        "{msg}"
    );
    // Broadcasting two cheap views to 2^62 elements (binary, ternary), and a unary op on a
    // 2^62-element broadcast view.
    let one = Tensor::ones(&[1, 1], DType::F32).unwrap();
    let (col, row) = (
        one.expand(&[1 << 31, 1]).unwrap(),
        one.expand(&[1, 1 << 31]).unwrap(),
    );
    let msg = err("add", col.add(&row));
    assert!(
        msg.starts_with("add") && msg.contains("cannot be allocated"),
        "{msg}"
    );
    let msg = err("where_", Tensor::where_(&one, &col, &row));
    assert!(
        msg.starts_with("where_") && msg.contains("cannot be allocated"),
        "{msg}"
    );
    let square = one.expand(&[1 << 31, 1 << 31]).unwrap();
    for (op, r) in [
        ("exp", square.exp()),
        ("mul_scalar", square.mul_scalar(2.0)),
        ("gt_scalar", square.gt_scalar(0.0)),
        ("clamp", square.clamp(Some(0.0), None)),
        ("contiguous", square.contiguous()),
        ("zeros_like", square.zeros_like()),
        ("repeat", col.repeat(&[1, 1 << 31])),
        ("to_vec", square.to_vec::<f32>().map(|_| one.clone())),
        ("ones_like", square.ones_like()),
        ("einsum", einsum("ij,jk->ik", &[&square, &square])),
        (
            "einsum \"i,j->ij\"",
            einsum(
                "i,j->ij",
                &[
                    &col.reshape(&[1 << 31]).unwrap(),
                    &row.reshape(&[1 << 31]).unwrap(),
                ],
            ),
        ),
        ("tril", square.tril(0)),
        ("to_dtype", square.to_dtype(DType::F64)),
        ("pad", square.pad(&[(1, 1), (0, 0)], 0.0)),
        // Strides [0, 1] do not flatten into one: the reshape copies 2^60 elements (2^62
        // bytes: beyond any address space, so no overcommit setting lets it through).
        (
            "reshape",
            Tensor::ones(&[2, 1], DType::F32)
                .unwrap()
                .expand(&[2, 1 << 59])
                .unwrap()
                .t()
                .unwrap()
                .reshape(&[1 << 60]),
        ),
    ] {
        let msg = err(op, r);
        assert!(
            msg.starts_with(op) && msg.contains("cannot be allocated"),
            "{msg}"
        );
    }
}

#[test]
fn jacobians_too_large_to_allocate_are_errors() {
    // f(x) = x broadcast to [2^55, 4]: a cheap view, but its Jacobian holds 2^59 values.
    let x = Tensor::randn(&[4], DType::F64, 0).unwrap();
    let f = |xs: &[Tensor]| Ok(vec![xs[0].expand(&[1 << 55, 4])?]);
    for mode in [
        eingrad::func::JacobianMode::Reverse,
        eingrad::func::JacobianMode::Forward,
    ] {
        let msg = err("jacobian", eingrad::func::jacobian(&f, &[x.clone()], mode));
        assert!(
            msg.starts_with("jacobian") && msg.contains("cannot be allocated"),
            "{msg}"
        );
        assert!(msg.contains("[36028797018963968, 4, 4]"), "{msg}");
    }
    // A Hessian of 2^34 entries (128 GiB of f64) for a 2^17-element input: refused before
    // any pass runs where memory cannot hold it. (Under unlimited overcommit the reservation
    // may succeed, so this half only runs where the probe fails.)
    let big = Tensor::zeros(&[1 << 17], DType::F64).unwrap();
    let probe: Result<Vec<u8>, _> = Vec::<u8>::new()
        .try_reserve_exact(1 << 37)
        .map(|_| Vec::new());
    if probe.is_err() {
        let msg = err(
            "hessian",
            eingrad::func::hessian(&|x: &Tensor| x.mul(x)?.sum_all(), &big),
        );
        assert!(
            msg.starts_with("hessian") && msg.contains("[131072, 131072]"),
            "{msg}"
        );
    }
}

#[test]
fn other_bad_arguments_name_the_op_and_argument() {
    let x = x();
    let cases: Vec<(&str, eingrad::Result<Tensor>, &str)> = vec![
        ("flip", x.flip(&[1, -1]), "dim -1 appears more than once"),
        (
            "masked_fill",
            x.masked_fill(&Tensor::zeros(&[4], DType::F32).unwrap(), 1.0),
            "the mask must broadcast",
        ),
        (
            "cat",
            {
                let one = Tensor::ones(&[1, 1], DType::F32).unwrap();
                let square = one.expand(&[1 << 31, 1 << 31]).unwrap();
                Tensor::cat(&[&square, &square], 0)
            },
            "more elements than memory can address",
        ),
        (
            "stack",
            {
                let one = Tensor::ones(&[1, 1], DType::F32).unwrap();
                let square = one.expand(&[1 << 31, 1 << 31]).unwrap();
                Tensor::stack(&[&square, &square], 0)
            },
            "more elements than memory can address",
        ),
        (
            "max_all",
            Tensor::zeros(&[0], DType::F32).unwrap().max_all(),
            "empty",
        ),
    ];
    for (op, r, needle) in cases {
        let msg = err(op, r);
        assert!(msg.starts_with(op), "{op}: {msg}");
        assert!(msg.contains(needle), "{op}: {msg}");
    }
}

#[test]
fn empty_views_with_huge_dims_neither_abort_nor_hang() {
    // Found by the fuzz below: an empty tensor viewed as [0, 2^62, 0, 0] sums to 2^62 zeros
    // (an allocation error), and concatenating it walked 2^62 empty rows.
    let e = Tensor::zeros(&[0], DType::F64)
        .unwrap()
        .view(&[0, 1 << 62, 0, 0])
        .unwrap();
    let msg = err("sum", e.sum(&[-1, 0, 2], false));
    assert!(msg.contains("cannot be allocated"), "{msg}");
    let c = Tensor::cat(&[&e, &e], 1).unwrap();
    assert_eq!(c.dims(), &[0, 1 << 63, 0, 0]);
    // Four of them: the sizes along dim 1 no longer add up in a usize.
    let msg = err("cat", Tensor::cat(&[&e, &e, &e, &e], 1));
    assert!(msg.contains("the sizes along dim 1 overflow"), "{msg}");
    let s = e.index_select(1, &[0, 0]).unwrap();
    assert_eq!(s.dims(), &[0, 2, 0, 0]);
    // tril built its [2^40, 2^40] mask for an empty [0, 2^40, 2^40] view.
    let e = Tensor::zeros(&[0], DType::F32)
        .unwrap()
        .view(&[0, 1 << 40, 1 << 40])
        .unwrap();
    assert_eq!(e.tril(0).unwrap().dims(), e.dims());
    assert_eq!(e.triu(1).unwrap().dims(), e.dims());
}

#[test]
fn reductions_over_an_empty_dim_follow_pytorch() {
    // torch.zeros(0, 3).softmax(0) is empty; torch.zeros(0, 2).logsumexp(0) is [-inf, -inf].
    let e = Tensor::zeros(&[0, 3], DType::F32).unwrap();
    assert_eq!(e.softmax(0).unwrap().dims(), &[0, 3]);
    assert_eq!(e.log_softmax(0).unwrap().dims(), &[0, 3]);
    let l = Tensor::zeros(&[0, 2], DType::F64)
        .unwrap()
        .logsumexp(&[0], false)
        .unwrap();
    assert_eq!(l.to_vec::<f64>().unwrap(), vec![f64::NEG_INFINITY; 2]);
    // amax of nothing stays an error (PyTorch: "Expected reduction dim 0 to have non-zero size").
    assert!(e.amax(&[0], false).is_err());
}

#[test]
fn a_nan_clamp_bound_gives_nan_like_pytorch() {
    // torch.clamp(x, min=nan) and clamp(x, max=nan) are all NaN, with zero gradient.
    let t = Tensor::from_f64s(&[1.0, 2.0], &[2], DType::F64)
        .unwrap()
        .requires_grad_(true);
    for (lo, hi) in [(Some(f64::NAN), None), (None, Some(f64::NAN))] {
        let y = t.clamp(lo, hi).unwrap();
        assert!(y.to_vec_f64().iter().all(|v| v.is_nan()));
        let g = eingrad::autograd::grad(
            &[y.sum_all().unwrap()],
            &[t.clone()],
            None,
            Default::default(),
        )
        .unwrap();
        assert_eq!(g[0].as_ref().unwrap().to_vec_f64(), vec![0.0, 0.0]);
    }
}

/// One public call with arguments drawn from small, edge and absurd values.
#[derive(Debug, Clone)]
enum Call {
    Reshape(Vec<usize>),
    View(Vec<isize>),
    Expand(Vec<usize>),
    Permute(Vec<usize>),
    Transpose(isize, isize),
    Narrow(isize, usize, usize),
    Slice(isize, usize, usize, usize),
    Diagonal(Vec<usize>),
    Unfold(isize, usize, usize),
    Squeeze(Option<isize>),
    Unsqueeze(isize),
    Flip(Vec<isize>),
    Sum(Vec<isize>, bool),
    Mean(Vec<isize>, bool),
    Amax(Vec<isize>, bool),
    MaxDim(isize, bool),
    Var(Vec<isize>, usize),
    Logsumexp(Vec<isize>),
    Softmax(isize),
    LogSoftmax(isize),
    Cumsum(isize, bool),
    Tril(isize),
    Repeat(Vec<usize>),
    Pad(Vec<(usize, usize)>),
    IndexSelect(isize, Vec<usize>),
    Gather(isize, Vec<usize>, Vec<usize>),
    Cat(isize),
    Stack(isize),
    Conv1d(usize, usize, usize, usize, usize),
    /// conv1d with a weight (and maybe a bias) of any small shape, causal padding.
    Conv1dShapes(Vec<usize>, Option<Vec<usize>>, usize, usize),
    Einsum(String),
    /// A pattern over two or three copies of the tensor, with explicit sizes.
    EinsumMany(String, usize, Vec<(char, usize)>),
    /// A binary op (0 add, 1 mul, 2 maximum, 3 pow, 4 where_) against ones of another shape.
    Binary(u8, Vec<usize>),
    IndexAdd(isize, Vec<usize>, Vec<usize>),
    ScatterAdd(isize, Vec<usize>, Vec<usize>),
    Clamp(f64, f64),
}

fn dim() -> impl Strategy<Value = isize> {
    prop_oneof![
        4 => -4isize..4,
        1 => Just(isize::MIN),
        1 => Just(isize::MAX),
    ]
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 0usize..5,
        1 => Just(usize::MAX),
        1 => Just(1usize << 40),
        1 => Just((1usize << 63) + 3),
    ]
}

fn sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(size(), 0..5)
}

fn dims() -> impl Strategy<Value = Vec<isize>> {
    prop::collection::vec(dim(), 0..4)
}

fn call() -> impl Strategy<Value = Call> {
    let shape_calls = prop_oneof![
        sizes().prop_map(Call::Reshape),
        prop::collection::vec(prop_oneof![-2isize..5, Just(1 << 62)], 0..5).prop_map(Call::View),
        sizes().prop_map(Call::Expand),
        prop::collection::vec(0usize..5, 0..5).prop_map(Call::Permute),
        (dim(), dim()).prop_map(|(a, b)| Call::Transpose(a, b)),
        (dim(), size(), size()).prop_map(|(d, s, l)| Call::Narrow(d, s, l)),
        (dim(), size(), size(), size()).prop_map(|(d, a, b, s)| Call::Slice(d, a, b, s)),
        prop::collection::vec(0usize..5, 0..4).prop_map(Call::Diagonal),
        (dim(), size(), size()).prop_map(|(d, s, t)| Call::Unfold(d, s, t)),
        prop::option::of(dim()).prop_map(Call::Squeeze),
        dim().prop_map(Call::Unsqueeze),
        dims().prop_map(Call::Flip),
    ];
    let reductions = prop_oneof![
        (dims(), any::<bool>()).prop_map(|(d, k)| Call::Sum(d, k)),
        (dims(), any::<bool>()).prop_map(|(d, k)| Call::Mean(d, k)),
        (dims(), any::<bool>()).prop_map(|(d, k)| Call::Amax(d, k)),
        (dim(), any::<bool>()).prop_map(|(d, k)| Call::MaxDim(d, k)),
        (dims(), size()).prop_map(|(d, c)| Call::Var(d, c)),
        dims().prop_map(Call::Logsumexp),
        dim().prop_map(Call::Softmax),
        dim().prop_map(Call::LogSoftmax),
        (dim(), any::<bool>()).prop_map(|(d, r)| Call::Cumsum(d, r)),
        dim().prop_map(Call::Tril),
    ];
    let others = prop_oneof![
        sizes().prop_map(Call::Repeat),
        prop::collection::vec((size(), size()), 0..4).prop_map(Call::Pad),
        (dim(), sizes()).prop_map(|(d, i)| Call::IndexSelect(d, i)),
        (dim(), sizes(), sizes()).prop_map(|(d, v, s)| Call::Gather(d, v, s)),
        dim().prop_map(Call::Cat),
        dim().prop_map(Call::Stack),
        (size(), size(), size(), size(), size())
            .prop_map(|(k, s, p, d, g)| Call::Conv1d(k, s, p, d, g)),
        (
            prop::collection::vec(0usize..4, 0..5),
            prop::option::of(prop::collection::vec(0usize..4, 0..3)),
            0usize..4,
            0usize..4
        )
            .prop_map(|(w, b, d, g)| Call::Conv1dShapes(w, b, d, g)),
        "[ab.,> -]{0,9}".prop_map(Call::Einsum),
        (
            "[abAi.,> -]{0,14}",
            2usize..4,
            prop::collection::vec(
                (prop::sample::select(vec!['a', 'b', 'i', 'z']), size()),
                0..3
            )
        )
            .prop_map(|(p, n, s)| Call::EinsumMany(p, n, s)),
        (0u8..5, prop::collection::vec(0usize..4, 0..4)).prop_map(|(k, s)| Call::Binary(k, s)),
        (dim(), sizes(), sizes()).prop_map(|(d, i, s)| Call::IndexAdd(d, i, s)),
        (dim(), sizes(), sizes()).prop_map(|(d, i, s)| Call::ScatterAdd(d, i, s)),
        (
            prop_oneof![Just(f64::NAN), -2.0..2.0f64],
            prop_oneof![Just(f64::NAN), -2.0..2.0f64]
        )
            .prop_map(|(a, b)| Call::Clamp(a, b)),
    ];
    prop_oneof![shape_calls, reductions, others]
}

fn apply(t: &Tensor, call: &Call) -> eingrad::Result<Tensor> {
    match call {
        Call::Reshape(s) => t.reshape(s),
        Call::View(s) => t.view(s),
        Call::Expand(s) => t.expand(s),
        Call::Permute(p) => t.permute(p),
        Call::Transpose(a, b) => t.transpose(*a, *b),
        Call::Narrow(d, s, l) => t.narrow(*d, *s, *l),
        Call::Slice(d, a, b, s) => t.slice(*d, *a, *b, *s),
        Call::Diagonal(d) => t.diagonal(d),
        Call::Unfold(d, s, st) => t.unfold(*d, *s, *st),
        Call::Squeeze(d) => t.squeeze(*d),
        Call::Unsqueeze(d) => t.unsqueeze(*d),
        Call::Flip(d) => t.flip(d),
        Call::Sum(d, k) => t.sum(d, *k),
        Call::Mean(d, k) => t.mean(d, *k),
        Call::Amax(d, k) => t.amax(d, *k),
        Call::MaxDim(d, k) => t.max_dim(*d, *k).map(|(v, _)| v),
        Call::Var(d, c) => t.var(d, *c, false),
        Call::Logsumexp(d) => t.logsumexp(d, false),
        Call::Softmax(d) => t.softmax(*d),
        Call::LogSoftmax(d) => t.log_softmax(*d),
        Call::Cumsum(d, r) => t.cumsum(*d, *r),
        Call::Tril(k) => t.tril(*k),
        Call::Repeat(r) => t.repeat(r),
        Call::Pad(p) => t.pad(p, 0.0),
        Call::IndexSelect(d, i) => t.index_select(*d, i),
        Call::Gather(d, values, shape) => t.gather(
            *d,
            &Indices {
                values: values.clone(),
                shape: shape.clone(),
            },
        ),
        Call::Cat(d) => Tensor::cat(&[t, t], *d),
        Call::Stack(d) => Tensor::stack(&[t, t], *d),
        Call::Conv1d(k, s, p, d, g) => {
            let w = Tensor::ones(&[2, 1, (*k).min(4)], t.dtype())?;
            let opts = Conv1dOptions::default()
                .stride(*s)
                .padding(Padding::LeftRight(*p, 1))
                .dilation(*d)
                .groups(*g);
            t.conv1d(&w, None, opts)
        }
        Call::Conv1dShapes(w, b, d, g) => {
            let w = Tensor::ones(w, t.dtype())?;
            let b = b.as_ref().map(|b| Tensor::ones(b, t.dtype())).transpose()?;
            let opts = Conv1dOptions::default()
                .padding(Padding::Causal)
                .dilation(*d)
                .groups(*g);
            t.conv1d(&w, b.as_ref(), opts)
        }
        Call::Einsum(p) => einsum(p, &[t]),
        Call::EinsumMany(p, n, sizes) => {
            let ops: Vec<&Tensor> = std::iter::repeat_n(t, *n).collect();
            einsum_with_sizes(p, &ops, sizes)
        }
        Call::Binary(kind, shape) => {
            let other = Tensor::ones(shape, t.dtype())?;
            match kind {
                0 => t.add(&other),
                1 => t.mul(&other),
                2 => t.maximum(&other),
                3 => t.pow(&other),
                _ => Tensor::where_(&other, t, &other),
            }
        }
        Call::IndexAdd(d, index, shape) => t.index_add(*d, index, &Tensor::ones(shape, t.dtype())?),
        Call::ScatterAdd(d, index, shape) => t.scatter_add(
            *d,
            &Indices {
                values: index.clone(),
                shape: shape.clone(),
            },
            &Tensor::ones(shape, t.dtype())?,
        ),
        Call::Clamp(a, b) => t.clamp(Some(*a), Some(*b)),
    }
}

/// Element counts up to which a chain reads every value of a tensor.
const READ_LIMIT: usize = 1 << 16;

/// Whether a chain goes on from `t`: small tensors (whose values it reads), and cheap views
/// too large for any address space (2^62 bytes or more: every op that would copy one must
/// fail at once, and ops that never copy must run). Sizes in between are dropped: copying
/// them might succeed and take real memory.
fn goes_on(t: &Tensor) -> bool {
    let bytes = (t.numel() as u128) * (t.dtype().size_in_bytes() as u128);
    t.numel() <= READ_LIMIT || bytes >= 1 << 62
}

/// Applies the calls in order, going on from each result that [`goes_on`]; returns the last
/// tensor. Every result prints (reading only what it prints); small ones are read whole.
fn chain(start: &Tensor, calls: &[Call]) -> Result<Tensor, TestCaseError> {
    let mut t = start.clone();
    for c in calls {
        match apply(&t, c) {
            Ok(out) => {
                let printed = out.to_string();
                prop_assert!(printed.starts_with("tensor("));
                if out.numel() <= READ_LIMIT {
                    prop_assert_eq!(out.to_vec_f64().len(), out.numel());
                }
                if goes_on(&out) {
                    t = out;
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
    Ok(t)
}

/// The chain's start: `x` itself, or (`huge`) `x` broadcast to `[2^31, 2^31 / p] ++ x.shape`
/// (`p` the power of two at or above x's element count): a cheap view of 2^61 to 2^62
/// elements.
fn widen(x: &Tensor, huge: bool) -> eingrad::Result<Tensor> {
    if !huge {
        return Ok(x.clone());
    }
    let per = x.numel().max(1).next_power_of_two();
    let shape: Vec<usize> = [1 << 31, (1 << 31) / per]
        .iter()
        .chain(x.dims())
        .copied()
        .collect();
    x.expand(&shape)
}

/// Runs a chain from `x` (widened when `huge`) and differentiates it: first and second
/// reverse-mode gradients (shaped like `x`) and a forward-mode JVP. Everything must return.
fn chain_and_derivatives(x: &Tensor, huge: bool, calls: &[Call]) -> Result<(), TestCaseError> {
    let y = match widen(x, huge) {
        Ok(w) => chain(&w, calls)?,
        Err(e) => return Err(TestCaseError::fail(e.to_string())),
    };
    let opts = GradOptions::default().create_graph(true).allow_unused(true);
    if let Ok(g) = grad(&[y.sum_all().unwrap()], &[x.clone()], None, opts) {
        if let Some(g) = &g[0] {
            prop_assert_eq!(g.dims(), x.dims());
            let gg = grad(&[g.sum_all().unwrap()], &[x.clone()], None, opts);
            if let Ok(gg) = gg {
                if let Some(gg) = &gg[0] {
                    prop_assert_eq!(gg.dims(), x.dims());
                }
            }
        }
    }
    let f = |xs: &[Tensor]| {
        let w = widen(&xs[0], huge)?;
        Ok(vec![chain(&w, calls).map_err(|e| {
            eingrad::Error::InvalidArgument {
                op: "chain",
                arg: "calls",
                msg: e.to_string(),
            }
        })?])
    };
    let plain = x.detach();
    if let Ok((_, tangents)) = jvp(&f, &[plain.clone()], &[plain.ones_like().unwrap()]) {
        prop_assert_eq!(tangents.len(), 1);
    }
    Ok(())
}

/// A tensor of `shape`: 0, 1, 2, … in f64, or (`special`) a cycle of NaN, ±inf, ±0 and
/// extreme values in f32.
fn start(shape: &[usize], special: bool, requires_grad: bool) -> Tensor {
    const SPECIAL: [f64; 8] = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        1e30,
        -1e-30,
        2.5,
    ];
    let n: usize = shape.iter().product();
    let t = if special {
        let v: Vec<f64> = (0..n).map(|i| SPECIAL[i % SPECIAL.len()]).collect();
        Tensor::from_f64s(&v, shape, DType::F32).unwrap()
    } else {
        Tensor::arange(0.0, n as f64, 1.0, DType::F64)
            .unwrap()
            .reshape(shape)
            .unwrap()
    };
    t.requires_grad_(requires_grad)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12000, ..ProptestConfig::default() })]

    /// Any chain of calls on a small tensor (including empty and zero-dim ones) or on a huge
    /// broadcast view of it returns; an `Ok` tensor prints, a small one's values can all be
    /// read; and the chain is differentiated in reverse (orders 1 and 2) and forward mode.
    #[test]
    fn random_chains_and_their_derivatives_return_instead_of_panicking(
        shape in prop::collection::vec(0usize..4, 0..4),
        special in any::<bool>(),
        huge in prop::bool::weighted(0.3),
        calls in prop::collection::vec(call(), 1..4),
    ) {
        cap_address_space();
        chain_and_derivatives(&start(&shape, special, true), huge, &calls)?;
    }
}

/// `[1, 1]` ones (f32) broadcast to `[2^31, 2^31]`: a cheap view of 2^62 elements (2^64
/// bytes: no allocation of it can succeed).
fn huge_square() -> Tensor {
    Tensor::ones(&[1, 1], DType::F32)
        .unwrap()
        .expand(&[1 << 31, 1 << 31])
        .unwrap()
}

/// `d sum(f(x)) / dx` for a leaf `x` of ones `[1, 1]` broadcast to `[2^31, 2^31]` first.
fn grad_through_huge(f: impl Fn(&Tensor) -> eingrad::Result<Tensor>) -> eingrad::Result<Tensor> {
    let x = Tensor::ones(&[1, 1], DType::F32)
        .unwrap()
        .requires_grad_(true);
    let y = f(&x.expand(&[1 << 31, 1 << 31])?)?;
    let g = grad(&[y.sum_all()?], &[x], None, GradOptions::default())?;
    Ok(g[0].clone().expect("x is used"))
}

/// A chain of views applied to a tensor.
type ViewChain = dyn Fn(&Tensor) -> eingrad::Result<Tensor>;

#[test]
fn backward_through_a_view_of_a_huge_broadcast_is_an_error_not_an_abort() {
    // Issue #16 A: each view's adjoint scatters into zeros of the broadcast's full shape.
    let cases: Vec<(&str, Box<ViewChain>)> = vec![
        ("narrow", Box::new(|t| t.narrow(0, 0, 1)?.narrow(1, 0, 1))),
        (
            "slice",
            Box::new(|t| t.slice(0, 0, 1, 1)?.slice(1, 0, 2, 1)),
        ),
        (
            "diagonal",
            Box::new(|t| t.diagonal(&[0, 1])?.narrow(0, 0, 1)),
        ),
        (
            "flip",
            Box::new(|t| t.flip(&[0])?.narrow(0, 0, 1)?.narrow(1, 0, 1)),
        ),
        (
            "unfold",
            Box::new(|t| t.unfold(1, 2, 1 << 30)?.narrow(0, 0, 1)),
        ),
        (
            "transpose",
            Box::new(|t| t.transpose(0, 1)?.narrow(0, 0, 1)?.narrow(1, 0, 1)),
        ),
        (
            "unsqueeze",
            Box::new(|t| t.unsqueeze(0)?.narrow(1, 0, 1)?.narrow(2, 0, 1)),
        ),
        (
            "reshape",
            Box::new(|t| {
                t.reshape(&[1 << 31, 1 << 31, 1])?
                    .narrow(0, 0, 1)?
                    .narrow(1, 0, 1)
            }),
        ),
        (
            "einsum",
            Box::new(|t| einsum("ii->i", &[t])?.narrow(0, 0, 1)),
        ),
    ];
    for (view, f) in cases {
        let msg = err(view, grad_through_huge(f));
        assert!(msg.contains("cannot be allocated"), "{view}: {msg}");
    }
}

#[test]
fn index_reductions_of_a_huge_broadcast_are_errors_not_aborts() {
    // Issue #16 B: rows_along copied the whole view (now fallibly; so is max_dim's one-hot
    // gradient).
    let sq = huge_square();
    let cases: Vec<(&str, eingrad::Result<Tensor>)> = vec![
        ("max_dim", sq.max_dim(0, false).map(|(v, _)| v)),
        ("min_dim", sq.min_dim(1, true).map(|(v, _)| v)),
        ("argmax", sq.argmax(0, false).map(|_| sq.clone())),
        ("argmin", sq.argmin(-1, false).map(|_| sq.clone())),
        ("cumsum", sq.cumsum(0, false)),
        ("cumsum", sq.cumsum(1, true)),
    ];
    for (op, r) in cases {
        let msg = err(op, r);
        assert!(
            msg.starts_with(op) && msg.contains("cannot be allocated"),
            "{op}: {msg}"
        );
    }
}

#[test]
fn softmax_of_a_huge_broadcast_fails_before_any_work() {
    // Issue #16: softmax of 2^62 elements spent 20 s before its allocation failed.
    let sq = huge_square();
    let start = std::time::Instant::now();
    for (op, r) in [
        ("softmax", sq.softmax(1)),
        ("log_softmax", sq.log_softmax(0)),
        ("logsumexp", sq.logsumexp(&[1], false)),
    ] {
        let msg = err(op, r);
        assert!(
            msg.starts_with(op) && msg.contains("cannot be allocated"),
            "{op}: {msg}"
        );
    }
    assert!(start.elapsed().as_secs() < 2, "{:?}", start.elapsed());
}

#[test]
fn a_repeated_output_label_of_huge_size_is_an_error_not_an_abort() {
    // Issue #16 C: "->ii" for a scalar allocated 2^58 f32 (an abort).
    let s = Tensor::scalar(1.0, DType::F32);
    for i in [1usize << 29, 1 << 31] {
        let msg = err("einsum", einsum_with_sizes("->ii", &[&s], &[('i', i)]));
        assert!(msg.contains("cannot be allocated"), "{msg}");
    }
    let v = Tensor::ones(&[1], DType::F32)
        .unwrap()
        .expand(&[1 << 31])
        .unwrap();
    let msg = err("einsum", einsum("i->ii", &[&v]));
    assert!(msg.contains("cannot be allocated"), "{msg}");
}

#[test]
fn printing_a_huge_broadcast_reads_only_the_printed_entries() {
    // Issue #16 D: Display copied 2^60 elements to print 36.
    let t = Tensor::ones(&[1], DType::F32)
        .unwrap()
        .expand(&[1 << 40, 1 << 20])
        .unwrap();
    let s = format!("{t}");
    assert!(
        s.starts_with("tensor([[1., 1., 1.,  ..., 1., 1., 1.],"),
        "{s}"
    );
    assert_eq!(s.matches("...").count(), 7, "{s}");
}

#[test]
fn gradcheck_refuses_more_directions_than_it_can_run() {
    let x = Tensor::randn(&[300], DType::F64, 0).unwrap();
    let opts = eingrad::func::GradcheckOptions {
        directions: usize::MAX,
        ..Default::default()
    };
    let r = eingrad::func::gradcheck(&|xs: &[Tensor]| Ok(vec![xs[0].tanh()?]), &[x.clone()], opts);
    let msg = err("gradcheck", r);
    assert!(
        msg.starts_with("gradcheck") && msg.contains("directions"),
        "{msg}"
    );
    // gradgradcheck refuses before its probe and says so in its own name
    let r = eingrad::func::gradgradcheck(&|xs: &[Tensor]| Ok(vec![xs[0].tanh()?]), &[x], opts);
    let msg = err("gradgradcheck", r);
    assert!(
        msg.starts_with("gradgradcheck") && msg.contains("directions"),
        "{msg}"
    );
}

#[test]
fn a_size_one_label_stretched_by_an_explicit_size_keeps_its_multiplicity() {
    // Issue #16: "i->" with i = 1000 over a [1] operand is the sum of 1000 broadcast copies.
    let x = Tensor::from_vec(vec![3.0f64], &[1])
        .unwrap()
        .requires_grad_(true);
    let y = einsum_with_sizes("i->", &[&x], &[('i', 1000)]).unwrap();
    let z = x.expand(&[1000]).unwrap().sum_all().unwrap();
    assert_eq!(y.to_vec_f64(), z.to_vec_f64());
    assert_eq!(y.to_vec_f64(), vec![3000.0]);
    let g = grad(&[y], &[x.clone()], None, GradOptions::default()).unwrap();
    assert_eq!(g[0].as_ref().unwrap().to_vec_f64(), vec![1000.0]);
    // Kept in the output it broadcasts.
    let y = einsum_with_sizes("i->i", &[&x], &[('i', 4)]).unwrap();
    assert_eq!(y.to_vec_f64(), vec![3.0; 4]);
    // A size that the operand's dim (not 1) disagrees with stays an error.
    let w = Tensor::ones(&[2], DType::F64).unwrap();
    assert!(einsum_with_sizes("i->", &[&w], &[('i', 3)]).is_err());
}

#[test]
fn the_ellipsis_label_cannot_be_sized() {
    let x = Tensor::ones(&[2, 3], DType::F32).unwrap();
    let msg = err(
        "einsum",
        einsum_with_sizes("...->...", &[&x], &[('\u{100}', 5)]),
    );
    assert!(msg.contains("\u{100}") || msg.contains("label"), "{msg}");
}

#[test]
fn errors_name_the_op_the_user_called() {
    let x = x();
    let big = Tensor::ones(&[1, 1], DType::F32)
        .unwrap()
        .expand(&[1 << 31, 1 << 31])
        .unwrap();
    let cases: Vec<(&str, eingrad::Result<Tensor>)> = vec![
        ("log_softmax", x.log_softmax(5)),
        ("stack", Tensor::stack(&[&x, &x.t().unwrap()], 0)),
        (
            "masked_fill",
            x.to_dtype(DType::F64).unwrap().masked_fill(&x, 1.0),
        ),
        (
            "index_select",
            Tensor::ones(&[1, 1], DType::F32)
                .unwrap()
                .expand(&[2, 1 << 61])
                .unwrap()
                .index_select(0, &[0]),
        ),
    ];
    for (op, r) in cases {
        let msg = err(op, r);
        assert!(msg.starts_with(op), "{op}: {msg}");
    }
    let dst = Tensor::zeros(&[2, 3], DType::F32).unwrap();
    let src = Tensor::ones(&[1], DType::F64)
        .unwrap()
        .expand(&[2, 3])
        .unwrap();
    let msg = err("copy_from", dst.copy_from(&src).map(|_| dst.clone()));
    assert!(msg.starts_with("copy_from"), "{msg}");
    // Reading a few entries of a huge broadcast view needs no copy of it.
    let idx = Indices {
        values: vec![7],
        shape: vec![1, 1],
    };
    assert_eq!(big.gather(0, &idx).unwrap().to_vec_f64(), vec![1.0]);
    let row = big.narrow(0, 3, 1).unwrap();
    assert_eq!(
        row.index_select(1, &[5, 9]).unwrap().to_vec_f64(),
        vec![1.0, 1.0]
    );
}

#[test]
fn pow_0_0_has_base_gradient_0_like_pytorch() {
    let a = Tensor::from_vec(vec![0.0f64, 2.0], &[2])
        .unwrap()
        .requires_grad_(true);
    let b = Tensor::from_vec(vec![0.0f64, 0.0], &[2]).unwrap();
    let y = a.pow(&b).unwrap().sum_all().unwrap();
    let opts = GradOptions::default().create_graph(true);
    let g = grad(&[y], &[a.clone()], None, opts).unwrap()[0]
        .clone()
        .unwrap();
    assert_eq!(g.to_vec_f64(), vec![0.0, 0.0]);
    // Still differentiable (the rule is written in tensor ops): d²/da² of a^0 is 0 too.
    let gg = grad(
        &[g.sum_all().unwrap()],
        &[a],
        None,
        GradOptions::default().allow_unused(true),
    )
    .unwrap();
    if let Some(gg) = &gg[0] {
        assert!(gg.to_vec_f64().iter().all(|v| *v == 0.0), "{gg}");
    }
}

#[test]
fn div_scalar_divides_and_mean_is_a_true_mean() {
    let x = Tensor::from_vec(vec![1e-300f64, 0.0], &[2]).unwrap();
    // (1e-310 is subnormal, so the quotient is 1e10 to about 14 digits; x · (1/c) gave inf.)
    let q = x.div_scalar(1e-310).unwrap().to_vec_f64();
    assert!((q[0] / 1e10 - 1.0).abs() < 1e-12 && q[1] == 0.0, "{q:?}");
    let ones = Tensor::ones(&[49], DType::F64).unwrap();
    assert_eq!(ones.mean_all().unwrap().item().unwrap(), 1.0);
    assert_eq!(ones.mean(&[0], false).unwrap().item().unwrap(), 1.0);
    // Mean of nothing is NaN (PyTorch), both ways.
    let e = Tensor::zeros(&[0], DType::F64).unwrap();
    assert!(e.mean_all().unwrap().item().unwrap().is_nan());
    assert!(e.mean(&[0], false).unwrap().item().unwrap().is_nan());
    // The gradient of x / c is 1 / c, computed as a division too.
    let x = Tensor::from_vec(vec![1.0f64], &[1])
        .unwrap()
        .requires_grad_(true);
    let y = x.div_scalar(3.0).unwrap().sum_all().unwrap();
    let g = grad(&[y], &[x], None, GradOptions::default()).unwrap();
    assert_eq!(g[0].as_ref().unwrap().to_vec_f64(), vec![1.0 / 3.0]);
}

#[test]
fn jacobian_blocks_have_the_input_dtype_in_every_mode() {
    use eingrad::func::{jacobian, JacobianMode};
    let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap();
    let f = |xs: &[Tensor]| Ok(vec![xs[0].mul_scalar(3.0)?.to_dtype(DType::F32)?]);
    for mode in [
        JacobianMode::Reverse,
        JacobianMode::Forward,
        JacobianMode::Auto,
    ] {
        let j = jacobian(&f, &[x.clone()], mode).unwrap();
        assert_eq!(j[0][0].dtype(), DType::F64, "{mode:?}");
        assert_eq!(j[0][0].to_vec_f64(), vec![3.0, 0.0, 0.0, 3.0], "{mode:?}");
    }
    // Nested (the input carries history): the blocks are recorded, same dtype.
    let xg = x.requires_grad_(true).mul_scalar(1.0).unwrap();
    for mode in [JacobianMode::Reverse, JacobianMode::Forward] {
        let j = jacobian(&f, &[xg.clone()], mode).unwrap();
        assert_eq!(j[0][0].dtype(), DType::F64, "{mode:?}");
        assert_eq!(j[0][0].to_vec_f64(), vec![3.0, 0.0, 0.0, 3.0], "{mode:?}");
    }
}

#[test]
fn reductions_of_a_huge_broadcast_read_each_distinct_element_once() {
    // The fuzz reaches these now: a sum or max over 2^62 copies must not walk them.
    let sq = huge_square();
    assert_eq!(sq.sum_all().unwrap().item().unwrap(), (1u64 << 62) as f64);
    assert_eq!(sq.amax(&[0, 1], false).unwrap().item().unwrap(), 1.0);
    assert_eq!(sq.mean_all().unwrap().item().unwrap(), 1.0);
    let g = grad_through_huge(|t| Ok(t.clone())).unwrap();
    assert_eq!(g.to_vec_f64(), vec![(1u64 << 62) as f64]);
    // Along a dim with real data, only the broadcast dims are folded by count.
    let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]).unwrap();
    let s = x.expand(&[1 << 40, 3]).unwrap().sum(&[0], false).unwrap();
    assert_eq!(
        s.to_vec_f64(),
        vec![1.0 * BIG as f64, 2.0 * BIG as f64, 3.0 * BIG as f64]
    );
}

#[test]
fn a_size_one_label_stretched_to_zero_is_empty() {
    // Found by the einsum fuzz: the plan said [0], the result had shape [1].
    let x = Tensor::from_vec(vec![f64::NAN], &[1]).unwrap();
    let y = einsum_with_sizes("a", &[&x], &[('a', 0)]).unwrap();
    assert_eq!(y.dims(), &[0]);
    // Summed over no copies: 0, even of NaN.
    let s = einsum_with_sizes("a->", &[&x], &[('a', 0)]).unwrap();
    assert_eq!(s.to_vec_f64(), vec![0.0]);
}
