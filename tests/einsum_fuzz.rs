//! A long fuzz of the einsum parser, resolver and planner, kept outside CI (`#[ignore]`):
//! `cargo fuzz` needs nightly and libFuzzer; this is the stable stand-in. Run it with
//!
//! ```text
//! EINGRAD_FUZZ_CASES=200000 cargo test --release --test einsum_fuzz -- --ignored
//! ```
//!
//! Every pattern (well formed or not, with stray characters, the ellipsis, non-ASCII labels,
//! sizes for any label) against random shapes must return: an `Err` with a message, or an
//! expression whose plan prints under every strategy; small ones are run under every
//! strategy and must agree with each other and with the expression's output shape.

mod support;
use support::cap_address_space;

use eingrad::einsum::{EinsumExpr, PlanStrategy};
use eingrad::{DType, Tensor};
use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Cases run, cases planned (under every strategy), cases run and compared: printed as the
/// fuzz goes (`--nocapture`), for the record of how far it reached.
static COUNTS: [AtomicUsize; 3] = [
    AtomicUsize::new(0),
    AtomicUsize::new(0),
    AtomicUsize::new(0),
];

fn count(i: usize) {
    let n = COUNTS[i].fetch_add(1, Relaxed) + 1;
    if i == 0 && n.is_multiple_of(10_000) {
        eprintln!(
            "einsum fuzz: {n} cases, {} planned, {} run and compared across strategies",
            COUNTS[1].load(Relaxed),
            COUNTS[2].load(Relaxed)
        );
    }
}

/// A term: labels from a small alphabet (so they repeat and meet), maybe an ellipsis.
fn term() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(vec!['a', 'b', 'c', 'i', 'j']), 0..5),
        prop::option::of(0usize..5),
    )
        .prop_map(|(ls, ell)| {
            let mut s: String = ls.into_iter().collect();
            if let Some(at) = ell {
                s.insert_str(at.min(s.len()), "...");
            }
            s
        })
}

/// Mostly well-formed patterns (terms, commas, an optional `->` output), some arbitrary text.
fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (prop::collection::vec(term(), 1..4), prop::option::of(term())).prop_map(
            |(ins, out)| match out {
                Some(o) => format!("{}->{o}", ins.join(",")),
                None => ins.join(","),
            }
        ),
        1 => "[abij.,>\\- ĀéZ0]{0,16}",
    ]
}

fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0usize..4, 1 => Just(1usize << 40), 1 => Just(usize::MAX)]
}

/// A shape for each input term of `pattern` (split at commas before any `->`): usually one
/// dim per label (plus 0 to 2 under an ellipsis), sometimes a rank off by one.
fn shapes_for(pattern: &str) -> BoxedStrategy<Vec<Vec<usize>>> {
    let inputs = pattern.split("->").next().unwrap_or("");
    let ranks: Vec<(usize, bool)> = inputs
        .split(',')
        .map(|t| {
            let labels = t.replace("...", "").chars().filter(|c| *c != ' ').count();
            (labels, t.contains("..."))
        })
        .collect();
    ranks
        .into_iter()
        .map(|(r, ell)| {
            let extra = if ell { 0usize..3 } else { 0usize..1 };
            (extra, prop::bool::weighted(0.05))
                .prop_flat_map(move |(e, off)| {
                    let rank = if off { r + 1 } else { r + e };
                    prop::collection::vec(prop_oneof![8 => 1usize..4, 1 => Just(0usize)], rank)
                })
                .boxed()
        })
        .collect::<Vec<_>>()
        .boxed()
}

fn sizes() -> impl Strategy<Value = Vec<(char, usize)>> {
    prop::collection::vec(
        (
            prop::sample::select(vec!['a', 'b', 'c', 'i', 'z', '\u{100}', 'é']),
            dim(),
        ),
        0..3,
    )
}

const STRATEGIES: [PlanStrategy; 4] = [
    PlanStrategy::Auto,
    PlanStrategy::Optimal,
    PlanStrategy::Greedy,
    PlanStrategy::LeftToRight,
];

fn cases() -> u32 {
    std::env::var("EINGRAD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    #[ignore = "long fuzz; run with --ignored (EINGRAD_FUZZ_CASES sets the count)"]
    fn einsum_parser_and_planner_return_and_agree(
        (pattern, shapes) in pattern().prop_flat_map(|p| (Just(p.clone()), shapes_for(&p))),
        sizes in sizes(),
        seed in 0u64..1000,
    ) {
        cap_address_space();
        count(0);
        let dims: Vec<&[usize]> = shapes.iter().map(|s| s.as_slice()).collect();
        let operands: Vec<Tensor> = shapes
            .iter()
            .enumerate()
            .map(|(k, s)| Tensor::randn(s, DType::F64, seed + k as u64).unwrap())
            .collect();
        let refs: Vec<&Tensor> = operands.iter().collect();
        let mut first: Option<(Vec<usize>, Vec<f64>)> = None;
        for strategy in STRATEGIES {
            match EinsumExpr::new(&pattern, &dims, &sizes, strategy) {
                Err(e) => {
                    prop_assert!(!e.to_string().is_empty());
                    prop_assert!(first.is_none(), "{strategy:?} refused what another planned: {e}");
                    return Ok(());
                }
                Ok(expr) => {
                    prop_assert!(!expr.plan().to_string().is_empty());
                    let shape = expr.output_shape();
                    let small = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
                        .is_some_and(|n| n <= 4096);
                    if !small {
                        // Too large to read: running must still return.
                        let _ = expr.run(&refs);
                        continue;
                    }
                    let out = match expr.run(&refs) {
                        Ok(out) => out,
                        Err(e) => {
                            prop_assert!(!e.to_string().is_empty());
                            continue;
                        }
                    };
                    prop_assert_eq!(out.dims(), shape.as_slice());
                    let v = out.to_vec_f64();
                    match &first {
                        None => first = Some((shape, v)),
                        Some((s0, v0)) => {
                            prop_assert_eq!(s0, &shape);
                            for (a, b) in v0.iter().zip(&v) {
                                let tol = 1e-9 * (1.0 + a.abs().max(b.abs()));
                                prop_assert!(
                                    (a - b).abs() <= tol || (a.is_nan() && b.is_nan()) || a == b,
                                    "{strategy:?}: {a} vs {b}"
                                );
                            }
                        }
                    }
                }
            }
        }
        count(1);
        if first.is_some() {
            count(2);
        }
    }
}
