//! Closed-form einsum Jacobians (`func::einsum_jacobian`): the seed experiment's four cases
//! and its illustrations, random patterns (repeated labels, three operands, ellipses,
//! broadcasting) against `func::jacobian`, and errors.

use eingrad::func::{einsum_jacobian, einsum_jacobian_spec, jacobian, JacobianMode};
use eingrad::{einsum, DType, Result, Tensor};

/// ∂ einsum(pattern, ops) / ∂ ops[k] by autograd (`jacobian`, reverse mode).
fn autograd_jacobian(pattern: &str, ops: &[Tensor], k: usize) -> Tensor {
    autograd_jacobian_in(pattern, ops, k, JacobianMode::Reverse)
}

fn autograd_jacobian_in(pattern: &str, ops: &[Tensor], k: usize, mode: JacobianMode) -> Tensor {
    let f = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        let mut all: Vec<&Tensor> = ops.iter().collect();
        all[k] = &xs[0];
        Ok(vec![einsum(pattern, &all)?])
    };
    jacobian(&f, &[ops[k].clone()], mode)
        .unwrap_or_else(|e| panic!("{pattern} k={k}: {e}"))
        .remove(0)
        .remove(0)
}

fn assert_same(what: &str, a: &Tensor, b: &Tensor, tol: f64) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    for (i, (x, y)) in a.to_vec_f64().iter().zip(b.to_vec_f64()).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}: entry {i}: {x} vs {y}"
        );
    }
}

fn check(pattern: &str, ops: &[Tensor], k: usize, tol: f64) -> (Tensor, String) {
    let refs: Vec<&Tensor> = ops.iter().collect();
    let (j, p) =
        einsum_jacobian(pattern, &refs, k).unwrap_or_else(|e| panic!("{pattern} k={k}: {e}"));
    let want = autograd_jacobian(pattern, ops, k);
    assert_same(&format!("{pattern} k={k} via \"{p}\""), &j, &want, tol);
    (j, p)
}

#[test]
fn seed_cases_match_autograd_with_the_seed_shapes() {
    type Case<'a> = (&'a str, &'a [usize], &'a [usize], &'a [usize], &'a str);
    let cases: [Case; 4] = [
        ("ij,jk->ik", &[2, 3], &[3, 4], &[2, 4, 2, 3], "jk->ikij"),
        (
            "bij,bjk->bik",
            &[5, 3, 8],
            &[5, 8, 9],
            &[5, 3, 9, 5, 3, 8],
            "bjk->bikbij",
        ),
        (
            "bchwkt,fckt->bfhw",
            &[1, 3, 16, 16, 2, 2],
            &[2, 3, 2, 2],
            &[1, 2, 16, 16, 1, 3, 16, 16, 2, 2],
            "fckt->bfhwbchwkt",
        ),
        (
            "abcd,efd->",
            &[1, 2, 3, 4],
            &[9, 10, 4],
            &[1, 2, 3, 4],
            "efd->abcd",
        ),
    ];
    for (i, (pattern, xs, ws, jshape, jpattern)) in cases.iter().enumerate() {
        for dtype in [DType::F64, DType::F32] {
            let x = Tensor::randn(xs, dtype, 10 + i as u64).unwrap();
            let w = Tensor::randn(ws, dtype, 20 + i as u64).unwrap();
            let tol = if dtype == DType::F64 { 1e-12 } else { 1e-5 };
            let (j, p) = check(pattern, &[x.clone(), w.clone()], 0, tol);
            assert_eq!(j.dims(), *jshape, "{pattern}");
            assert_eq!(p, *jpattern);
            assert_eq!(j.dtype(), dtype);
            // And with respect to the second operand.
            let (jw, _) = check(pattern, &[x, w], 1, tol);
            let out: Vec<usize> = jshape[..jshape.len() - xs.len()].to_vec();
            let want: Vec<usize> = out.iter().chain(ws.iter()).copied().collect();
            assert_eq!(jw.dims(), want.as_slice());
        }
    }
}

#[test]
fn seed_conv_case_structure() {
    // J[b,f,h,w,b',c,h',w',k,t] = δ(b,b') δ(h,h') δ(w,w') w[f,c,k,t]: check a few entries.
    let x = Tensor::randn(&[1, 3, 16, 16, 2, 2], DType::F64, 1).unwrap();
    let w = Tensor::randn(&[2, 3, 2, 2], DType::F64, 2).unwrap();
    let (j, _) = einsum_jacobian("bchwkt,fckt->bfhw", &[&x, &w], 0).unwrap();
    let jv = j.to_vec_f64();
    let wv = w.to_vec_f64();
    let strides = [
        2 * 256 * 3 * 256 * 4,
        256 * 3 * 256 * 4,
        16 * 3 * 256 * 4,
        3 * 256 * 4,
        3 * 256 * 4,
        256 * 4,
        16 * 4,
        4,
        2,
        1,
    ];
    let at = |i: [usize; 10]| jv[i.iter().zip(strides).map(|(a, s)| a * s).sum::<usize>()];
    for (f, c, h, ww, k, t) in [(0, 0, 0, 0, 0, 0), (1, 2, 5, 7, 1, 0), (0, 1, 15, 15, 1, 1)] {
        let wval = wv[((f * 3 + c) * 2 + k) * 2 + t];
        assert_eq!(at([0, f, h, ww, 0, c, h, ww, k, t]), wval);
        assert_eq!(at([0, f, h, ww, 0, c, (h + 1) % 16, ww, k, t]), 0.0);
        assert_eq!(at([0, f, h, ww, 0, c, h, (ww + 3) % 16, k, t]), 0.0);
    }
    let nonzero = jv.iter().filter(|v| **v != 0.0).count();
    assert_eq!(
        nonzero,
        2 * 16 * 16 * 3 * 2 * 2,
        "one copy of w per output pixel"
    );
}

#[test]
fn seed_illustrations_and_single_operand_patterns() {
    let ops = |shapes: &[&[usize]]| -> Vec<Tensor> {
        shapes
            .iter()
            .enumerate()
            .map(|(i, s)| Tensor::randn(s, DType::F64, 40 + i as u64).unwrap())
            .collect()
    };
    for (pattern, shapes) in [
        ("ij,ij->ij", &[&[2, 3][..], &[2, 3]][..]),
        ("bij,bk->bij", &[&[2, 3, 2], &[2, 4]]),
        ("bij,kl->bijkl", &[&[2, 2, 3], &[2, 2]]),
        ("ij,jk", &[&[2, 3], &[3, 2]]), // implicit output
        ("i,i->", &[&[4], &[4]]),
        ("ij,j->i", &[&[3, 4], &[4]]),
    ] {
        let o = ops(shapes);
        for k in 0..o.len() {
            check(pattern, &o, k, 1e-12);
        }
    }
    for (pattern, shape, jp) in [
        ("ii->i", &[3usize, 3][..], "->iii"),
        ("ij->ji", &[2, 3], "->jiij"),
        ("iij->j", &[2, 2, 3], "->jiij"),
        ("ii->", &[3, 3], "->ii"),
        ("ij->", &[2, 3], "->ij"),
        ("i->ii", &[3], "->iii"),
        ("...ij->...ji", &[2, 2, 3], "->ajiaij"),
    ] {
        let (_, p) = check(pattern, &ops(&[shape]), 0, 1e-12);
        assert_eq!(p, jp, "{pattern}");
    }
}

#[test]
fn broadcast_dims_and_ellipses() {
    let r = |s: &[usize], seed| Tensor::randn(s, DType::F64, seed).unwrap();
    // A size-1 dim of the differentiated operand gets its own size-1 label.
    let (j, p) = check("ij,ij->ij", &[r(&[1, 3], 1), r(&[2, 3], 2)], 0, 1e-12);
    assert_eq!(j.dims(), &[2, 3, 1, 3]);
    assert_eq!(p, "ij->ijaj");
    check("ij,ij->ij", &[r(&[1, 3], 1), r(&[2, 3], 2)], 1, 1e-12);
    check("ij,ij->j", &[r(&[2, 1], 3), r(&[2, 3], 4)], 0, 1e-12);
    check(
        "...ij,...jk->...ik",
        &[r(&[2, 1, 2, 3], 5), r(&[4, 3, 2], 6)],
        0,
        1e-12,
    );
    check(
        "...ij,...jk->...ik",
        &[r(&[2, 1, 2, 3], 5), r(&[4, 3, 2], 6)],
        1,
        1e-12,
    );
    check("...i,i...->i", &[r(&[2, 3], 7), r(&[3, 2], 8)], 0, 1e-12);
    check("b...,b->...", &[r(&[2, 3, 1], 9), r(&[2], 10)], 0, 1e-12);
}

/// A small deterministic generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A random einsum: 1–3 operands over labels a–e, repeated labels within a term, size-1
/// broadcast dims, sometimes an ellipsis, sometimes a repeated output label.
fn random_case(rng: &mut Rng) -> (String, Vec<Tensor>) {
    let labels = ['a', 'b', 'c', 'd', 'e'];
    let size: Vec<usize> = labels.iter().map(|_| 1 + rng.below(3)).collect();
    let n_ops = 1 + rng.below(3);
    let ellipsis = rng.below(4) == 0;
    let ell_dims: Vec<usize> = (0..rng.below(3)).map(|_| 1 + rng.below(3)).collect();
    let mut terms = Vec::new();
    let mut shapes = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..n_ops {
        let rank = rng.below(4);
        let mut term = String::new();
        let mut shape = Vec::new();
        if ellipsis {
            term.push_str("...");
            // Right-aligned: this operand may cover only the last few ellipsis dims, and may
            // broadcast some of them.
            let take = rng.below(ell_dims.len() + 1);
            for &d in &ell_dims[ell_dims.len() - take..] {
                shape.push(if rng.below(3) == 0 { 1 } else { d });
            }
        }
        let mut mine: Vec<(char, usize)> = Vec::new();
        for _ in 0..rank {
            let l = labels[rng.below(labels.len())];
            // A repeated label takes the size of its first occurrence; otherwise sometimes a
            // size-1 broadcast dim.
            let s = match mine.iter().find(|(c, _)| *c == l) {
                Some(&(_, s)) => s,
                None if rng.below(5) == 0 => 1,
                None => size[labels.iter().position(|&c| c == l).unwrap()],
            };
            mine.push((l, s));
            term.push(l);
            shape.push(s);
            if !seen.contains(&l) {
                seen.push(l);
            }
        }
        terms.push(term);
        shapes.push(shape);
    }
    let mut out = String::new();
    if ellipsis {
        out.push_str("...");
    }
    for &l in &seen {
        if rng.below(2) == 0 {
            out.push(l);
        }
    }
    if !seen.is_empty() && rng.below(6) == 0 {
        out.push(seen[rng.below(seen.len())]); // repeated output label (generalised einsum)
    }
    let pattern = format!("{}->{}", terms.join(","), out);
    let ops = shapes
        .iter()
        .map(|s| Tensor::randn(s, DType::F64, rng.next()).unwrap())
        .collect();
    (pattern, ops)
}

#[test]
fn random_patterns_match_autograd() {
    let mut rng = Rng(2024);
    let mut tried = 0;
    let mut repeated_in = 0;
    let mut three = 0;
    while tried < 300 {
        let (pattern, ops) = random_case(&mut rng);
        let refs: Vec<&Tensor> = ops.iter().collect();
        // Skip the (rare) random patterns that are not valid einsums, e.g. mismatched sizes
        // of a label broadcast in one operand and repeated in another.
        if einsum(&pattern, &refs).is_err() {
            continue;
        }
        tried += 1;
        let lhs = pattern.split("->").next().unwrap();
        if lhs.split(',').any(|t| {
            let ls: Vec<char> = t.chars().filter(|c| c.is_alphabetic()).collect();
            ls.iter().enumerate().any(|(i, c)| ls[..i].contains(c))
        }) {
            repeated_in += 1;
        }
        if ops.len() == 3 {
            three += 1;
        }
        for k in 0..ops.len() {
            let (j, _) = check(&pattern, &ops, k, 1e-12);
            if tried % 3 == 0 {
                // Columns by the transpose trick: double backward through the einsum rules.
                let fwd = autograd_jacobian_in(&pattern, &ops, k, JacobianMode::Forward);
                assert_same(&format!("{pattern} k={k} forward"), &fwd, &j, 1e-12);
            }
        }
    }
    assert!(
        repeated_in >= 20 && three >= 50,
        "coverage: {repeated_in} repeated, {three} three-operand"
    );
}

#[test]
fn jacobian_is_differentiable_in_the_other_operands() {
    // J = ∂(x w)/∂x does not depend on x, and Σ J = Σ_i Σ_k Σ_j w[j,k] · (rows of x):
    // d/dw Σ J = (number of rows of x) everywhere.
    let x = Tensor::randn(&[2, 3], DType::F64, 1).unwrap();
    let w = Tensor::randn(&[3, 4], DType::F64, 2)
        .unwrap()
        .requires_grad_(true);
    let (j, _) = einsum_jacobian("ij,jk->ik", &[&x, &w], 0).unwrap();
    assert!(j.requires_grad());
    j.sum_all().unwrap().backward().unwrap();
    assert_eq!(w.grad().unwrap().to_vec::<f64>().unwrap(), vec![2.0; 12]);
}

#[test]
fn errors_name_what_is_wrong() {
    let x = Tensor::randn(&[2, 3], DType::F64, 1).unwrap();
    let w = Tensor::randn(&[3, 4], DType::F64, 2).unwrap();
    let e = einsum_jacobian("ij,jk->ik", &[&x, &w], 2)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("einsum_jacobian") && e.contains("k = 2") && e.contains("2 operands"),
        "{e}"
    );
    let e = einsum_jacobian("ij,jk->ik", &[&x, &x], 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("operand 1") && e.contains("'j'"), "{e}");
    let e = einsum_jacobian("ij,j$->ik", &[&x, &w], 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains('^'), "{e}");
    // Out of letters: 50 labels plus an ellipsis of three dims needs 53.
    let letters: String = ('a'..='z').chain('A'..='X').collect();
    let t = Tensor::ones(&vec![1; 53], DType::F32).unwrap();
    let pattern = format!("{letters}...->");
    let e = einsum_jacobian(&pattern, &[&t], 0).unwrap_err().to_string();
    assert!(e.contains("no unused letter"), "{e}");
    // The spec alone, without computing.
    let s = einsum_jacobian_spec("bij,bjk->bik", &[&[5, 3, 8], &[5, 8, 9]], 1).unwrap();
    assert_eq!(s.pattern, "bij->bikbjk");
    assert_eq!(s.shape, vec![5, 3, 9, 5, 8, 9]);
    assert_eq!(s.operands, vec![0]);
}
