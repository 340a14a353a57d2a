//! einsum against a naive loop oracle in f64: random patterns with 1–4 operands, repeated
//! labels, ellipsis, size-1 broadcasting and generalised outputs.

use std::collections::BTreeMap;

use eingrad::einsum::parse::{parse_pattern, resolve};
use eingrad::{einsum_with_sizes, DType, Tensor};
use proptest::prelude::*;

/// Sums the product of the operands over every assignment of every label.
fn oracle(pattern: &str, ops: &[Tensor], sizes: &[(char, usize)]) -> (Vec<usize>, Vec<f64>) {
    let shapes: Vec<&[usize]> = ops.iter().map(|t| t.dims()).collect();
    let spec = parse_pattern(pattern, ops.len()).unwrap();
    let r = resolve(pattern, &spec, &shapes, sizes).unwrap();
    let labels: Vec<char> = r.sizes.keys().copied().collect();
    let dims: Vec<usize> = labels.iter().map(|l| r.sizes[l]).collect();
    let out_shape: Vec<usize> = r.output.iter().map(|l| r.sizes[l]).collect();
    let mut out = vec![0.0; out_shape.iter().product()];
    let data: Vec<Vec<f64>> = ops.iter().map(|t| t.to_vec_f64()).collect();
    let total: usize = dims.iter().product();
    let mut assign: BTreeMap<char, usize> = BTreeMap::new();
    for flat in 0..total {
        let mut rem = flat;
        for (l, &d) in labels.iter().zip(&dims).rev() {
            assign.insert(*l, rem % d);
            rem /= d;
        }
        let mut p = 1.0;
        for (k, t) in ops.iter().enumerate() {
            let mut off = 0;
            let mut stride = 1;
            for (d, l) in r.inputs[k].iter().enumerate().rev() {
                let i = if t.dims()[d] == 1 { 0 } else { assign[l] };
                off += i * stride;
                stride *= t.dims()[d];
            }
            p *= data[k][off];
        }
        let mut off = 0;
        let mut stride = 1;
        for (d, l) in r.output.iter().enumerate().rev() {
            off += assign[l] * stride;
            stride *= out_shape[d];
        }
        // A repeated output label only receives its diagonal: skip assignments where the
        // repeated positions would disagree — they cannot, since one label has one value.
        out[off] += p;
    }
    (out_shape, out)
}

fn check(pattern: &str, shapes: &[Vec<usize>], sizes: &[(char, usize)], seed: u64) {
    let ops: Vec<Tensor> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| Tensor::randn(s, DType::F64, seed + i as u64).unwrap())
        .collect();
    let refs: Vec<&Tensor> = ops.iter().collect();
    let got = einsum_with_sizes(pattern, &refs, sizes)
        .unwrap_or_else(|e| panic!("{pattern} {shapes:?}: {e}"));
    let (shape, want) = oracle(pattern, &ops, sizes);
    assert_eq!(got.dims(), shape.as_slice(), "{pattern} {shapes:?}");
    let g = got.to_vec::<f64>().unwrap();
    for (a, b) in g.iter().zip(&want) {
        assert!(
            (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
            "{pattern} {shapes:?}: {g:?} vs {want:?}"
        );
    }
}

#[test]
fn hand_picked_patterns() {
    type Case<'a> = (&'a str, &'a [&'a [usize]], &'a [(char, usize)]);
    let cases: &[Case] = &[
        ("ij,jk->ik", &[&[2, 3], &[3, 4]], &[]),
        ("ij,jk", &[&[2, 3], &[3, 4]], &[]),
        ("bij,bjk->bik", &[&[2, 3, 4], &[2, 4, 5]], &[]),
        ("ii->i", &[&[3, 3]], &[]),
        ("ii", &[&[3, 3]], &[]),
        ("ijjk->ik", &[&[2, 3, 3, 2]], &[]),
        ("i->ii", &[&[3]], &[]),
        ("jk->ijk", &[&[2, 3]], &[('i', 4)]),
        ("ij,ij->ij", &[&[2, 3], &[2, 3]], &[]),
        ("bi,bj->bij", &[&[2, 3], &[2, 4]], &[]),
        ("i,i->", &[&[5], &[5]], &[]),
        ("...ij,...jk->...ik", &[&[2, 1, 2, 3], &[4, 3, 2]], &[]),
        ("ij,j->i", &[&[3, 1], &[4]], &[]),
        (
            "ab,bc,cd,de->ae",
            &[&[2, 3], &[3, 4], &[4, 5], &[5, 2]],
            &[],
        ),
        ("abcd,efd->", &[&[1, 2, 3, 4], &[2, 3, 4]], &[]),
        (
            "bchwkt,fckt->bfhw",
            &[&[1, 2, 3, 3, 2, 2], &[2, 2, 2, 2]],
            &[],
        ),
        ("ij,kl->ijkl", &[&[2, 2], &[2, 3]], &[]),
        ("iij->ji", &[&[2, 2, 3]], &[]),
        ("i->iij", &[&[2]], &[('j', 2)]),
        ("ab,ab,ab->a", &[&[2, 3], &[2, 3], &[2, 3]], &[]),
        ("a,b,c->abc", &[&[2], &[3], &[2]], &[]),
        ("ii,ij->j", &[&[3, 3], &[3, 2]], &[]),
        ("", &[&[]], &[]),
        ("->", &[&[]], &[]),
        ("...->...", &[&[2, 3]], &[]),
        ("i...->...", &[&[2, 3]], &[]),
    ];
    for (i, (p, shapes, sizes)) in cases.iter().enumerate() {
        let shapes: Vec<Vec<usize>> = shapes.iter().map(|s| s.to_vec()).collect();
        check(p, &shapes, sizes, i as u64 * 10);
    }
}

fn arb_case() -> impl Strategy<Value = (String, Vec<Vec<usize>>, Vec<(char, usize)>)> {
    let pool = ['a', 'b', 'c', 'd', 'e'];
    (
        prop::collection::vec(1usize..=3, 5),
        prop::collection::vec(prop::collection::vec(0usize..5, 0..=3), 1..=4),
        prop::collection::vec(any::<bool>(), 16),
        0usize..4,
        any::<u8>(),
    )
        .prop_map(move |(sizes, terms, flags, out_kind, ell)| {
            let use_ellipsis = ell % 4 == 0;
            let ell_shape = [2usize, 1][..(ell as usize % 3).min(2)].to_vec();
            let mut pattern_terms = Vec::new();
            let mut shapes = Vec::new();
            let mut fi = 0;
            for t in &terms {
                let mut s = String::new();
                let mut shape = Vec::new();
                if use_ellipsis {
                    s.push_str("...");
                    // each operand's ellipsis covers a suffix of ell_shape
                    let take = if flags[fi % 16] {
                        ell_shape.len()
                    } else {
                        ell_shape.len().min(1)
                    };
                    shape.extend_from_slice(&ell_shape[ell_shape.len() - take..]);
                }
                for &li in t {
                    s.push(pool[li]);
                    let bcast =
                        flags[(fi + 7) % 16] && t.iter().filter(|&&x| x == li).nth(1).is_none();
                    shape.push(if bcast && fi % 3 == 0 { 1 } else { sizes[li] });
                    fi += 1;
                }
                pattern_terms.push(s);
                shapes.push(shape);
            }
            let mut used: Vec<char> = terms.iter().flatten().map(|&i| pool[i]).collect();
            used.sort();
            used.dedup();
            let mut extra = Vec::new();
            let out = match out_kind {
                0 => None,
                1 => Some(
                    used.iter()
                        .copied()
                        .filter(|_| flags[fi % 16])
                        .collect::<String>(),
                ),
                2 => {
                    // generalised: repeat a label, add an output-only one
                    let mut o: String = used.iter().take(2).collect();
                    if let Some(&c) = used.first() {
                        o.push(c);
                    }
                    o.push('z');
                    extra.push(('z', 2));
                    Some(o)
                }
                _ => Some(used.iter().rev().collect::<String>()),
            };
            let mut p = pattern_terms.join(",");
            if let Some(o) = out {
                p.push_str("->");
                if use_ellipsis {
                    p.push_str("...");
                }
                p.push_str(&o);
            }
            (p, shapes, extra)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1200, ..ProptestConfig::default() })]
    #[test]
    fn random_einsums_match_oracle((pattern, shapes, sizes) in arb_case()) {
        let refs: Vec<&[usize]> = shapes.iter().map(|s| s.as_slice()).collect();
        let spec = parse_pattern(&pattern, shapes.len());
        // Only patterns the oracle can resolve are compared; the rest must be errors in both.
        let ok = spec.and_then(|s| resolve(&pattern, &s, &refs, &sizes)).is_ok();
        if ok {
            check(&pattern, &shapes, &sizes, 99);
        } else {
            let ops: Vec<Tensor> = shapes.iter().map(|s| Tensor::zeros(s, DType::F64).unwrap()).collect();
            let r: Vec<&Tensor> = ops.iter().collect();
            prop_assert!(einsum_with_sizes(&pattern, &r, &sizes).is_err());
        }
    }
}
