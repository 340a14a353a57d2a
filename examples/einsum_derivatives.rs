//! Print an einsum's VJP patterns and its closed-form Jacobian.
//!
//! The gradient of an einsum with respect to one operand is again an einsum: for
//! `"bij,bjk->bik"` the gradient of the first operand is `einsum("bik,bjk->bij", g, w)` with `g`
//! the output gradient. `einsum_vjp_pattern` writes that pattern down; the example checks it
//! against autograd. The whole Jacobian of an einsum is an einsum too (`einsum_jacobian`), in
//! the generalised notation where an output label may repeat (`"j->iij"` puts `v` on a
//! diagonal) — the example checks it against the generic `jacobian`.
//!
//! Run it with `cargo run --release --example einsum_derivatives`; the command line prints the
//! same VJP patterns with `eingrad einsum PATTERN --grad`.

use eingrad::autograd::{grad, GradOptions};
use eingrad::einsum::einsum_vjp_pattern;
use eingrad::func::{einsum_jacobian, jacobian, JacobianMode};
use eingrad::{einsum, DType, Result, Tensor};

/// Largest |a − b| over two tensors of the same shape.
fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    a.to_vec_f64()
        .iter()
        .zip(b.to_vec_f64())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// The VJP patterns of a batched matrix product, and how far the gradients they compute are
/// from autograd's.
fn vjp_patterns() -> Result<(Vec<String>, f64)> {
    let pattern = "bij,bjk->bik";
    let x = Tensor::randn(&[2, 3, 4], DType::F64, 0)?.requires_grad_(true);
    let w = Tensor::randn(&[2, 4, 5], DType::F64, 1)?.requires_grad_(true);
    let g = Tensor::randn(&[2, 3, 5], DType::F64, 2)?; // an output gradient
    let y = einsum(pattern, &[&x, &w])?;
    let by_autograd = grad(
        &[y],
        &[x.clone(), w.clone()],
        Some(&[g.clone()]),
        GradOptions::default(),
    )?;

    let patterns = vec![
        einsum_vjp_pattern(pattern, 0)?,
        einsum_vjp_pattern(pattern, 1)?,
    ];
    // The VJP of operand k takes the output gradient, then the other operands in order.
    let gx = einsum(&patterns[0], &[&g, &w])?;
    let gw = einsum(&patterns[1], &[&g, &x])?;
    let mut err: f64 = 0.0;
    for (mine, auto) in [gx, gw].iter().zip(&by_autograd) {
        err = err.max(match auto {
            Some(a) => max_abs_diff(mine, a),
            None => f64::INFINITY,
        });
    }
    Ok((patterns, err))
}

/// The closed-form Jacobians of a matrix–vector product `A·v`, their patterns, and how far
/// they are from the generic `jacobian`.
fn jacobians() -> Result<Vec<(String, Vec<usize>, f64)>> {
    let pattern = "ij,j->i";
    let a = Tensor::randn(&[2, 3], DType::F64, 3)?;
    let v = Tensor::randn(&[3], DType::F64, 4)?;
    let generic = jacobian(
        &|xs: &[Tensor]| Ok(vec![einsum(pattern, &[&xs[0], &xs[1]])?]),
        &[a.clone(), v.clone()],
        JacobianMode::Reverse,
    )?;
    (0..2)
        .map(|k| {
            let (j, jac_pattern) = einsum_jacobian(pattern, &[&a, &v], k)?;
            let err = max_abs_diff(&j, &generic[0][k]);
            Ok((jac_pattern, j.dims().to_vec(), err))
        })
        .collect()
}

fn main() -> Result<()> {
    let (patterns, err) = vjp_patterns()?;
    println!("y = einsum(\"bij,bjk->bik\", x, w), output gradient g:");
    println!("  grad x = einsum(\"{}\", g, w)", patterns[0]);
    println!("  grad w = einsum(\"{}\", g, x)", patterns[1]);
    println!("  largest difference from autograd: {err:.1e}");
    println!(
        "  (a diagonal's VJP embeds: \"ii->i\" gives \"{}\")",
        einsum_vjp_pattern("ii->i", 0)?
    );

    println!("y = einsum(\"ij,j->i\", A, v):");
    for ((pattern, shape, err), name) in jacobians()?.iter().zip(["A", "v"]) {
        println!(
            "  dy/d{name} = einsum(\"{pattern}\", the other operand), shape {shape:?}, \
             largest difference from jacobian(): {err:.1e}"
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
    fn patterns_are_the_expected_einsums_and_agree_with_autograd() {
        let (patterns, err) = super::vjp_patterns().unwrap();
        assert_eq!(patterns, ["bik,bjk->bij", "bik,bij->bjk"]);
        assert!(err < 1e-12, "{err}");
        let jacs = super::jacobians().unwrap();
        // dy/dA[i, i', j] = δ(i, i')·v[j]: v embedded on a diagonal; dy/dv = A itself
        assert_eq!(
            (jacs[0].0.as_str(), jacs[0].1.as_slice()),
            ("j->iij", &[2, 2, 3][..])
        );
        assert_eq!(
            (jacs[1].0.as_str(), jacs[1].1.as_slice()),
            ("ij->ij", &[2, 3][..])
        );
        assert!(jacs.iter().all(|(_, _, e)| *e < 1e-12), "{jacs:?}");
    }
}
