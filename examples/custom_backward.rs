//! Write an op with a hand-written backward and check it with `verify_backward`.
//!
//! `Silu` computes x·σ(x) in one go and states its derivative itself:
//! d/dx [x·σ(x)] = σ(x)·(1 + x·(1 − σ(x))). `verify_backward` runs it next to a reference made
//! of ordinary differentiable ops (`x.mul(&x.sigmoid())`) and compares outputs, vector–Jacobian
//! products for random and one-hot cotangents, and central finite differences. A second
//! version with a classic mistake (the product rule's second term forgotten) shows what a
//! failing report looks like.
//!
//! Run it with `cargo run --release --example custom_backward`.

use eingrad::autograd::{apply_function1, CustomFunction, FunctionCtx};
use eingrad::func::{verify_backward, VerifyOptions, VerifyReport};
use eingrad::{DType, Result, Tensor};

/// x·σ(x) with its derivative written by hand; `buggy` drops the x·σ'(x) term.
struct Silu {
    buggy: bool,
}

impl CustomFunction for Silu {
    fn name(&self) -> &str {
        "silu"
    }

    fn forward(&self, ctx: &mut FunctionCtx, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let s = x.sigmoid()?;
        // Save what the backward needs (the input; σ is cheap to recompute).
        ctx.save_for_backward(&[x.clone()]);
        Ok(vec![x.mul(&s)?])
    }

    fn backward(&self, ctx: &FunctionCtx, grads: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
        let x = &ctx.saved_tensors()[0];
        let s = x.sigmoid()?;
        let dydx = if self.buggy {
            s // forgot the product rule: d(x·σ)/dx is not just σ
        } else {
            // σ·(1 + x·(1 − σ)), written in tensor ops so that it is differentiable again
            s.mul(&x.mul(&s.neg()?.add_scalar(1.0)?)?.add_scalar(1.0)?)?
        };
        Ok(vec![Some(grads[0].mul(&dydx)?)])
    }
}

/// Checks `Silu { buggy }` against the plain-ops reference on a 3×4 f64 input.
fn check(buggy: bool) -> Result<VerifyReport> {
    let x = Tensor::randn(&[3, 4], DType::F64, 7)?;
    let custom = |xs: &[Tensor]| Ok(vec![apply_function1(Silu { buggy }, &[&xs[0]])?]);
    let reference = |xs: &[Tensor]| Ok(vec![xs[0].mul(&xs[0].sigmoid()?)?]);
    let opts = VerifyOptions::default().finite_differences(true);
    verify_backward(&custom, &reference, &[x], opts)
}

fn main() -> Result<()> {
    let good = check(false)?;
    println!("hand-written backward:\n{good}\n");
    let bad = check(true)?;
    println!("the same with the product rule forgotten:\n{bad}");
    if let Some(d) = bad.first_failure() {
        println!(
            "\nfirst failure: {}: max abs error {:.3e} at {:?} ({:.6} vs {:.6})",
            d.what, d.max_abs_err, d.worst_index, d.custom, d.reference
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs() {
        super::main().unwrap();
    }

    #[test]
    fn verify_backward_passes_the_right_rule_and_catches_the_wrong_one() {
        let good = super::check(false).unwrap();
        assert!(good.passed(), "{good}");
        let bad = super::check(true).unwrap();
        assert!(!bad.passed(), "{bad}");
        // the outputs agree; the first comparison to fail is the gradient
        assert!(bad.forward.iter().all(|d| d.passed), "{bad}");
        let first = bad.first_failure().unwrap();
        assert!(first.what.contains("gradient"), "{}", first.what);
    }
}
