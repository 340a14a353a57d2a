//! Joining, padding and indexing ops: values against hand-computed expectations, first and
//! second derivatives against finite differences, and errors that name the argument.

use eingrad::func::{gradcheck, gradgradcheck, GradcheckOptions};
use eingrad::{DType, Indices, Result, Tensor};

fn t(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_f64s(v, shape, DType::F64).unwrap()
}

fn ar(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::arange(0.0, n as f64, 1.0, DType::F64)
        .unwrap()
        .reshape(shape)
        .unwrap()
}

fn vals(x: &Tensor) -> Vec<f64> {
    x.to_vec::<f64>().unwrap()
}

/// y² so that second derivatives pass through the op's backward rule non-trivially.
fn sq(y: Tensor) -> Result<Vec<Tensor>> {
    Ok(vec![y.mul(&y)?])
}

/// Gradient checks of orders 1 and 2.
fn check(name: &str, f: &dyn Fn(&[Tensor]) -> Result<Vec<Tensor>>, inputs: &[Tensor]) {
    let r = gradcheck(f, inputs, GradcheckOptions::default()).unwrap();
    assert!(r.passed, "{name}, order 1: {}", r.worst);
    let r = gradgradcheck(f, inputs, GradcheckOptions::default()).unwrap();
    assert!(r.passed, "{name}, order 2: {}", r.worst);
}

fn err_text(r: Result<Tensor>) -> String {
    match r {
        Ok(t) => panic!("expected an error, got a tensor of shape {:?}", t.dims()),
        Err(e) => e.to_string(),
    }
}

fn assert_err(r: Result<Tensor>, needles: &[&str]) {
    let e = err_text(r);
    for n in needles {
        assert!(e.contains(n), "error {e:?} should mention {n:?}");
    }
}

fn idx(values: &[usize], shape: &[usize]) -> Indices {
    Indices {
        values: values.to_vec(),
        shape: shape.to_vec(),
    }
}

// ---- cat / stack ----

#[test]
fn cat_values() {
    let a = ar(&[2, 2]);
    let b = t(&[10.0, 11.0], &[1, 2]);
    let c = Tensor::cat(&[&a, &b], 0).unwrap();
    assert_eq!(c.dims(), &[3, 2]);
    assert_eq!(vals(&c), vec![0.0, 1.0, 2.0, 3.0, 10.0, 11.0]);
    let d = t(&[7.0, 8.0, 9.0, 6.0], &[2, 2]);
    let e = Tensor::cat(&[&a, &d, &a.narrow(1, 0, 1).unwrap()], -1).unwrap();
    assert_eq!(e.dims(), &[2, 5]);
    assert_eq!(
        vals(&e),
        vec![0.0, 1.0, 7.0, 8.0, 0.0, 2.0, 3.0, 9.0, 6.0, 2.0]
    );
    // strided input (a transpose) is read in logical order
    let f = Tensor::cat(&[&a.t().unwrap(), &a], 1).unwrap();
    assert_eq!(vals(&f), vec![0.0, 2.0, 0.0, 1.0, 1.0, 3.0, 2.0, 3.0]);
    // a single piece and an empty piece
    assert_eq!(vals(&Tensor::cat(&[&a], 0).unwrap()), vals(&a));
    let empty = Tensor::zeros(&[0, 2], DType::F64).unwrap();
    assert_eq!(vals(&Tensor::cat(&[&empty, &a], 0).unwrap()), vals(&a));
}

#[test]
fn cat_grads() {
    let xs = [
        Tensor::randn(&[2, 1, 3], DType::F64, 1).unwrap(),
        Tensor::randn(&[2, 2, 3], DType::F64, 2).unwrap(),
        Tensor::randn(&[2, 3, 3], DType::F64, 3).unwrap(),
    ];
    check("cat", &|x| sq(Tensor::cat(&[&x[0], &x[1], &x[2]], 1)?), &xs);
    // only some pieces require grad
    let c = Tensor::ones(&[1, 2], DType::F64).unwrap();
    let x = Tensor::randn(&[2, 2], DType::F64, 4).unwrap();
    check(
        "cat with a constant",
        &|x| sq(Tensor::cat(&[&c, &x[0], &c], 0)?),
        &[x],
    );
}

#[test]
fn cat_errors() {
    let a = Tensor::zeros(&[2, 3], DType::F64).unwrap();
    let b = Tensor::zeros(&[2, 4], DType::F64).unwrap();
    let c = Tensor::zeros(&[2, 3], DType::F32).unwrap();
    assert_err(Tensor::cat(&[], 0), &["cat", "tensors", "empty"]);
    assert_err(
        Tensor::cat(&[&a, &a, &b], 0),
        &["cat", "tensors[2]", "[2, 4]"],
    );
    assert_err(Tensor::cat(&[&a, &c], 0), &["cat", "tensors[1]", "F32"]);
    assert_err(Tensor::cat(&[&a, &a], 2), &["cat", "dim 2"]);
    assert_err(
        Tensor::cat(&[&a, &Tensor::zeros(&[2, 3, 1], DType::F64).unwrap()], 0),
        &["cat", "tensors[1]"],
    );
    assert_err(
        Tensor::cat(&[&Tensor::scalar(1.0, DType::F64)], 0),
        &["cat", "dim 0"],
    );
}

#[test]
fn stack_values_grads_errors() {
    let a = t(&[1.0, 2.0], &[2]);
    let b = t(&[3.0, 4.0], &[2]);
    let s = Tensor::stack(&[&a, &b], 0).unwrap();
    assert_eq!(
        (s.dims(), vals(&s)),
        (&[2usize, 2][..], vec![1.0, 2.0, 3.0, 4.0])
    );
    let s = Tensor::stack(&[&a, &b, &a], 1).unwrap();
    assert_eq!(s.dims(), &[2, 3]);
    assert_eq!(vals(&s), vec![1.0, 3.0, 1.0, 2.0, 4.0, 2.0]);
    assert_eq!(Tensor::stack(&[&a, &b], -1).unwrap().dims(), &[2, 2]);
    let xs = [
        Tensor::randn(&[2, 3], DType::F64, 5).unwrap(),
        Tensor::randn(&[2, 3], DType::F64, 6).unwrap(),
    ];
    check("stack", &|x| sq(Tensor::stack(&[&x[0], &x[1]], 1)?), &xs);
    assert_err(Tensor::stack(&[], 0), &["stack", "tensors", "empty"]);
    assert_err(
        Tensor::stack(&[&a, &t(&[1.0, 2.0, 3.0], &[3])], 0),
        &["stack", "tensors[1]", "[3]"],
    );
    assert_err(Tensor::stack(&[&a, &b], 2), &["stack", "dim 2"]);
}

// ---- pad ----

#[test]
fn pad_values() {
    let x = ar(&[2, 2]).add_scalar(1.0).unwrap();
    let p = x.pad(&[(1, 0), (0, 2)], -1.0).unwrap();
    assert_eq!(p.dims(), &[3, 4]);
    #[rustfmt::skip]
    let want = vec![
        -1.0, -1.0, -1.0, -1.0,
         1.0,  2.0, -1.0, -1.0,
         3.0,  4.0, -1.0, -1.0,
    ];
    assert_eq!(vals(&p), want);
    // a strided input
    let q = x.t().unwrap().pad(&[(0, 0), (1, 1)], 0.0).unwrap();
    assert_eq!(vals(&q), vec![0.0, 1.0, 3.0, 0.0, 0.0, 2.0, 4.0, 0.0]);
    let r = x.pad_dim(0, 0, 1, 9.0).unwrap();
    assert_eq!(vals(&r), vec![1.0, 2.0, 3.0, 4.0, 9.0, 9.0]);
    let z = x.pad(&[(0, 0), (0, 0)], 5.0).unwrap();
    assert_eq!(vals(&z), vals(&x));
}

#[test]
fn pad_grads() {
    let x = Tensor::randn(&[2, 3], DType::F64, 7).unwrap();
    check(
        "pad",
        &|x| sq(x[0].pad(&[(1, 2), (0, 1)], 0.5)?),
        std::slice::from_ref(&x),
    );
    check("pad_dim", &|x| sq(x[0].pad_dim(-1, 2, 0, 0.0)?), &[x]);
}

#[test]
fn pad_errors() {
    let x = Tensor::zeros(&[2, 3], DType::F64).unwrap();
    assert_err(x.pad(&[(1, 1)], 0.0), &["pad", "pads", "rank 2"]);
    assert_err(x.pad(&[(0, 0), (usize::MAX, 1)], 0.0), &["pad", "pads"]);
    assert_err(x.pad_dim(2, 1, 1, 0.0), &["pad_dim", "dim 2"]);
}

// ---- index_select / index_add ----

#[test]
fn index_select_values() {
    let x = ar(&[3, 2]);
    let y = x.index_select(0, &[2, 0, 2]).unwrap();
    assert_eq!(y.dims(), &[3, 2]);
    assert_eq!(vals(&y), vec![4.0, 5.0, 0.0, 1.0, 4.0, 5.0]);
    let y = x.index_select(-1, &[1]).unwrap();
    assert_eq!(
        (y.dims(), vals(&y)),
        (&[3usize, 1][..], vec![1.0, 3.0, 5.0])
    );
    let y = x.index_select(1, &[]).unwrap();
    assert_eq!(y.dims(), &[3, 0]);
    // repeated indices accumulate in the gradient
    let x = Tensor::ones(&[3], DType::F64).unwrap().requires_grad_(true);
    x.index_select(0, &[0, 0, 2])
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(vals(&x.grad().unwrap()), vec![2.0, 0.0, 1.0]);
}

#[test]
fn index_add_values() {
    let x = ar(&[3, 2]);
    let s = t(&[10.0, 20.0, 30.0, 40.0, 50.0, 60.0], &[3, 2]);
    let y = x.index_add(0, &[2, 0, 2], &s).unwrap();
    assert_eq!(vals(&y), vec![30.0, 41.0, 2.0, 3.0, 64.0, 85.0]);
    let s = t(&[1.0, 2.0, 3.0], &[3, 1]);
    let y = x.index_add(1, &[1], &s).unwrap();
    assert_eq!(vals(&y), vec![0.0, 2.0, 2.0, 5.0, 4.0, 8.0]);
    // out of place
    assert_eq!(vals(&x), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
}

#[test]
fn index_select_and_add_grads() {
    let x = Tensor::randn(&[4, 3], DType::F64, 8).unwrap();
    check(
        "index_select dim 0",
        &|x| sq(x[0].index_select(0, &[3, 1, 3, 0])?),
        std::slice::from_ref(&x),
    );
    check(
        "index_select dim 1",
        &|x| sq(x[0].index_select(1, &[2, 2])?),
        std::slice::from_ref(&x),
    );
    let s = Tensor::randn(&[4, 2], DType::F64, 9).unwrap();
    check(
        "index_add",
        &|x| sq(x[0].index_add(1, &[0, 2], &x[1])?),
        &[x.clone(), s],
    );
    let s = Tensor::randn(&[3, 3], DType::F64, 10).unwrap();
    check(
        "index_add repeats",
        &|x| sq(x[0].index_add(0, &[1, 1, 3], &x[1])?),
        &[x.clone(), s.clone()],
    );
    // gradient to the source alone (self a constant)
    let base = Tensor::zeros(&[4, 3], DType::F64).unwrap();
    check(
        "index_add source",
        &|x| sq(base.index_add(0, &[1, 1, 3], &x[0])?),
        &[s],
    );
}

#[test]
fn index_select_and_add_errors() {
    let x = Tensor::zeros(&[3, 2], DType::F64).unwrap();
    assert_err(
        x.index_select(0, &[0, 3]),
        &["index_select", "index", "index[1] = 3", "size 3"],
    );
    assert_err(
        x.index_select(1, &[5]),
        &["index_select", "index[0] = 5", "dim 1 of size 2"],
    );
    assert_err(x.index_select(2, &[0]), &["index_select", "dim 2"]);
    let s = Tensor::zeros(&[2, 2], DType::F64).unwrap();
    assert_err(
        x.index_add(0, &[0, 3], &s),
        &["index_add", "index[1] = 3", "size 3"],
    );
    assert_err(
        x.index_add(0, &[0], &s),
        &["index_add", "source", "[1, 2]", "[2, 2]"],
    );
    let s32 = Tensor::zeros(&[2, 2], DType::F32).unwrap();
    assert_err(
        x.index_add(0, &[0, 1], &s32),
        &["index_add", "source", "F32"],
    );
}

// ---- gather / scatter_add ----

#[test]
fn gather_values() {
    // torch.gather(torch.tensor([[1,2],[3,4]]), 1, torch.tensor([[0,0],[1,0]])) = [[1,1],[4,3]]
    let x = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let y = x.gather(1, &idx(&[0, 0, 1, 0], &[2, 2])).unwrap();
    assert_eq!(vals(&y), vec![1.0, 1.0, 4.0, 3.0]);
    // dim 0 with an index smaller than self in dim 1 and longer along dim 0
    let x = ar(&[3, 3]);
    let y = x
        .gather(0, &idx(&[2, 0, 1, 1, 0, 2, 2, 2], &[4, 2]))
        .unwrap();
    assert_eq!(y.dims(), &[4, 2]);
    assert_eq!(vals(&y), vec![6.0, 1.0, 3.0, 4.0, 0.0, 7.0, 6.0, 7.0]);
    // rank 3, dim -1 (what picking class scores per position looks like)
    let x = ar(&[2, 2, 3]);
    let y = x.gather(-1, &idx(&[2, 0, 1, 1], &[2, 2, 1])).unwrap();
    assert_eq!(vals(&y), vec![2.0, 3.0, 7.0, 10.0]);
}

#[test]
fn scatter_add_values() {
    let x = Tensor::zeros(&[2, 3], DType::F64).unwrap();
    let src = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    // dim 1: out[i][index[i][j]] += src[i][j], index smaller than src
    let y = x
        .scatter_add(1, &idx(&[2, 2, 0, 1], &[2, 2]), &src)
        .unwrap();
    assert_eq!(vals(&y), vec![0.0, 0.0, 3.0, 4.0, 5.0, 0.0]);
    // dim 0: out[index[i][j]][j] += src[i][j]
    let y = ar(&[2, 3])
        .scatter_add(0, &idx(&[1, 0, 1, 1, 1, 0], &[2, 3]), &src)
        .unwrap();
    assert_eq!(vals(&y), vec![0.0, 3.0, 8.0, 8.0, 9.0, 8.0]);
}

#[test]
fn gather_scatter_grads() {
    let x = Tensor::randn(&[3, 4], DType::F64, 11).unwrap();
    let i0 = idx(&[2, 0, 1, 2, 0, 0, 2, 1], &[2, 4]);
    let i1 = idx(&[3, 3, 0, 1, 1, 2], &[3, 2]);
    check(
        "gather dim 0",
        &|x| sq(x[0].gather(0, &i0)?),
        std::slice::from_ref(&x),
    );
    check(
        "gather dim 1",
        &|x| sq(x[0].gather(1, &i1)?),
        std::slice::from_ref(&x),
    );
    let src = Tensor::randn(&[3, 3], DType::F64, 12).unwrap();
    check(
        "scatter_add dim 1",
        &|x| sq(x[0].scatter_add(1, &i1, &x[1])?),
        &[x.clone(), src.clone()],
    );
    let src = Tensor::randn(&[2, 4], DType::F64, 13).unwrap();
    check(
        "scatter_add dim 0",
        &|x| sq(x[0].scatter_add(0, &i0, &x[1])?),
        &[x.clone(), src],
    );
    // the source alone, larger than the index (its gradient is zero-padded)
    let base = Tensor::zeros(&[3, 4], DType::F64).unwrap();
    let src = Tensor::randn(&[4, 3], DType::F64, 14).unwrap();
    check(
        "scatter_add src",
        &|x| sq(base.scatter_add(1, &i1, &x[0])?),
        &[src],
    );
}

#[test]
fn gather_scatter_errors() {
    let x = Tensor::zeros(&[2, 3], DType::F64).unwrap();
    assert_err(
        x.gather(1, &idx(&[0, 3], &[1, 2])),
        &["gather", "index", "index[1] = 3", "size 3"],
    );
    assert_err(
        x.gather(1, &idx(&[0, 1], &[2])),
        &["gather", "index", "rank"],
    );
    assert_err(
        x.gather(1, &idx(&[0, 1], &[2, 2])),
        &["gather", "index", "holds 2 values"],
    );
    assert_err(
        x.gather(1, &idx(&[0; 3], &[3, 1])),
        &["gather", "index", "dim 0"],
    );
    assert_err(x.gather(-3, &idx(&[0], &[1, 1])), &["gather", "dim -3"]);
    let src = Tensor::zeros(&[2, 2], DType::F64).unwrap();
    assert_err(
        x.scatter_add(1, &idx(&[0, 0, 0, 0, 0, 0], &[2, 3]), &src),
        &["scatter_add", "src", "dim 1"],
    );
    assert_err(
        x.scatter_add(1, &idx(&[0, 9], &[1, 2]), &src),
        &["scatter_add", "index[1] = 9"],
    );
    assert_err(
        x.scatter_add(
            1,
            &idx(&[0], &[1, 1]),
            &Tensor::zeros(&[2], DType::F64).unwrap(),
        ),
        &["scatter_add", "src", "rank"],
    );
    assert_err(
        x.scatter_add(
            1,
            &idx(&[0], &[1, 1]),
            &Tensor::zeros(&[2, 2], DType::F32).unwrap(),
        ),
        &["scatter_add", "src", "F32"],
    );
}

// ---- repeat, tril/triu, one_hot ----

#[test]
fn repeat_values_grads_errors() {
    let x = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let y = x.repeat(&[1, 2]).unwrap();
    assert_eq!(vals(&y), vec![1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0]);
    let y = x.repeat(&[2, 1, 1]).unwrap();
    assert_eq!(y.dims(), &[2, 2, 2]);
    assert_eq!(vals(&y), vec![1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]);
    let y = x.repeat(&[2, 1]).unwrap();
    assert_eq!(vals(&y), vec![1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]);
    assert_eq!(x.repeat(&[0, 3]).unwrap().dims(), &[0, 6]);
    // the gradient sums over the copies
    let x = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    x.repeat(&[3, 2])
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(vals(&x.grad().unwrap()), vec![6.0, 6.0]);
    let x = Tensor::randn(&[2, 3], DType::F64, 15).unwrap();
    check(
        "repeat",
        &|x| sq(x[0].repeat(&[2, 1, 2])?),
        std::slice::from_ref(&x),
    );
    assert_err(x.repeat(&[2]), &["repeat", "reps", "[2, 3]"]);
    assert_err(x.repeat(&[usize::MAX, 2]), &["repeat", "reps", "overflow"]);
}

#[test]
fn tril_triu_values() {
    let x = ar(&[3, 3]).add_scalar(1.0).unwrap();
    assert_eq!(
        vals(&x.tril(0).unwrap()),
        vec![1.0, 0.0, 0.0, 4.0, 5.0, 0.0, 7.0, 8.0, 9.0]
    );
    assert_eq!(
        vals(&x.tril(-1).unwrap()),
        vec![0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 7.0, 8.0, 0.0]
    );
    assert_eq!(
        vals(&x.tril(1).unwrap()),
        vec![1.0, 2.0, 0.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    );
    assert_eq!(
        vals(&x.triu(0).unwrap()),
        vec![1.0, 2.0, 3.0, 0.0, 5.0, 6.0, 0.0, 0.0, 9.0]
    );
    assert_eq!(
        vals(&x.triu(1).unwrap()),
        vec![0.0, 2.0, 3.0, 0.0, 0.0, 6.0, 0.0, 0.0, 0.0]
    );
    assert_eq!(
        vals(&x.triu(-1).unwrap()),
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 8.0, 9.0]
    );
    // batched, rectangular
    let y = Tensor::ones(&[2, 2, 3], DType::F64)
        .unwrap()
        .triu(1)
        .unwrap();
    assert_eq!(vals(&y), [0.0, 1.0, 1.0, 0.0, 0.0, 1.0].repeat(2));
    // ±∞ and NaN outside the kept triangle become 0, not NaN
    let m = t(&[1.0, f64::NEG_INFINITY, 3.0, 2.0], &[2, 2]);
    assert_eq!(vals(&m.tril(0).unwrap()), vec![1.0, 0.0, 3.0, 2.0]);
    let n = t(&[1.0, 5.0, f64::NAN, 2.0], &[2, 2]);
    assert_eq!(vals(&n.triu(0).unwrap()), vec![1.0, 5.0, 0.0, 2.0]);
    // and the gradient there is 0, not NaN
    let m = m.requires_grad_(true);
    m.tril(0).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(vals(&m.grad().unwrap()), vec![1.0, 0.0, 1.0, 1.0]);
}

#[test]
fn tril_triu_grads_errors() {
    let x = Tensor::randn(&[2, 3, 3], DType::F64, 16).unwrap();
    check("tril", &|x| sq(x[0].tril(0)?), std::slice::from_ref(&x));
    check("triu", &|x| sq(x[0].triu(1)?), &[x]);
    let v = Tensor::zeros(&[3], DType::F64).unwrap();
    assert_err(v.tril(0), &["tril", "self", "rank"]);
    assert_err(v.triu(0), &["triu", "self", "rank"]);
}

#[test]
fn one_hot_values_errors() {
    let o = Tensor::one_hot(&[1, 0, 2, 1], 3, DType::F64).unwrap();
    assert_eq!(o.dims(), &[4, 3]);
    assert_eq!(
        vals(&o),
        vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    );
    assert!(!o.requires_grad());
    assert_eq!(Tensor::one_hot(&[], 3, DType::F32).unwrap().dims(), &[0, 3]);
    assert_err(
        Tensor::one_hot(&[0, 5], 3, DType::F64),
        &["one_hot", "indices[1] = 5", "num_classes = 3"],
    );
}

#[test]
fn index_ops_work_in_f32() {
    let x = Tensor::arange(0.0, 6.0, 1.0, DType::F32)
        .unwrap()
        .reshape(&[2, 3])
        .unwrap();
    let y = Tensor::cat(&[&x, &x], 0)
        .unwrap()
        .index_select(1, &[2])
        .unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.0, 5.0, 2.0, 5.0]);
    let p = x
        .pad_dim(1, 1, 0, 0.0)
        .unwrap()
        .gather(1, &idx(&[0, 3], &[2, 1]))
        .unwrap();
    assert_eq!(p.to_vec::<f32>().unwrap(), vec![0.0, 5.0]);
}
