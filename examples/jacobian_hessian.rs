//! Get a whole Jacobian and a Hessian.
//!
//! Rosenbrock's function f(x, y) = (1 − x)² + 100·(y − x²)² is the squared length of the
//! residual vector r(x, y) = [1 − x, 10·(y − x²)]. `jacobian` gives ∂r/∂(x, y) (a 2×2 matrix)
//! and `hessian` gives ∂²f/∂(x, y)² (2×2, symmetric). At the minimum (1, 1) the residuals
//! vanish, so the Hessian equals the Gauss–Newton matrix 2·JᵀJ exactly; elsewhere it does not.
//!
//! Run it with `cargo run --release --example jacobian_hessian`.

use eingrad::func::{hessian, jacobian, JacobianMode};
use eingrad::{einsum, Result, Tensor};

/// The residuals [1 − x, 10·(y − x²)] of a point p = [x, y].
fn residuals(p: &Tensor) -> Result<Tensor> {
    let x = p.narrow(0, 0, 1)?;
    let y = p.narrow(0, 1, 1)?;
    let r0 = x.neg()?.add_scalar(1.0)?;
    let r1 = y.sub(&x.mul(&x)?)?.mul_scalar(10.0)?;
    Tensor::cat(&[&r0, &r1], 0)
}

/// Rosenbrock's function: the sum of the squared residuals.
fn rosenbrock(p: &Tensor) -> Result<Tensor> {
    let r = residuals(p)?;
    r.mul(&r)?.sum_all()
}

/// At `point`: the Jacobian of the residuals, the Hessian of f and 2·JᵀJ, each row-major 2×2.
fn derivatives(point: [f64; 2]) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let p = Tensor::from_vec(point.to_vec(), &[2])?;
    // `jacobian` takes a function of several inputs returning several outputs and gives one
    // block per (output, input) pair; here there is one of each.
    let blocks = jacobian(
        &|xs: &[Tensor]| Ok(vec![residuals(&xs[0])?]),
        std::slice::from_ref(&p),
        JacobianMode::Reverse,
    )?;
    let j = &blocks[0][0]; // shape [2, 2]: residual × coordinate
    let h = hessian(&rosenbrock, &p)?; // shape [2, 2]
    let gauss_newton = einsum("ki,kj->ij", &[j, j])?.mul_scalar(2.0)?;
    Ok((j.to_vec()?, h.to_vec()?, gauss_newton.to_vec()?))
}

fn print_matrix(name: &str, m: &[f64]) {
    println!("  {name:<8} [[{:>8.1}, {:>8.1}],", m[0], m[1]);
    println!("  {:<8}  [{:>8.1}, {:>8.1}]]", "", m[2], m[3]);
}

fn main() -> Result<()> {
    for point in [[1.0, 1.0], [-1.2, 1.0]] {
        let (j, h, gn) = derivatives(point)?;
        println!("at {point:?}:");
        print_matrix("J", &j);
        print_matrix("H", &h);
        print_matrix("2·JᵀJ", &gn);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
    }

    #[test]
    fn runs() {
        super::main().unwrap();
    }

    #[test]
    fn jacobian_and_hessian_match_the_closed_forms() {
        // at the minimum: J = [[-1, 0], [-20x, 10]], H = [[802, -400], [-400, 200]] = 2·JᵀJ
        let (j, h, gn) = super::derivatives([1.0, 1.0]).unwrap();
        assert!(close(&j, &[-1.0, 0.0, -20.0, 10.0]), "{j:?}");
        assert!(close(&h, &[802.0, -400.0, -400.0, 200.0]), "{h:?}");
        assert!(close(&h, &gn), "{h:?} vs {gn:?}");
        // elsewhere: H = [[2 − 400y + 1200x², −400x], [−400x, 200]], symmetric, ≠ 2·JᵀJ
        let (x, y) = (-1.2, 1.0);
        let (_, h, gn) = super::derivatives([x, y]).unwrap();
        let want = [
            2.0 - 400.0 * y + 1200.0 * x * x,
            -400.0 * x,
            -400.0 * x,
            200.0,
        ];
        assert!(close(&h, &want), "{h:?} vs {want:?}");
        assert_eq!(h[1], h[2]);
        assert!(!close(&h, &gn));
    }
}
