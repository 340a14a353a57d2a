//! Reverse-mode `jacobian` reads all rows in batched reverse passes (every node runs its rule
//! vectorised over a leading batch of cotangents, or once per batch entry when it has no
//! vectorised rule). These tests pin it against forward mode, which shares no code with it,
//! on graphs mixing vectorised rules (einsum, permute, broadcast_to, views, add/sub/mul,
//! contiguous, unary ops) with per-entry ones (softmax, sum over a dim), and check that a hook
//! in the graph sends `jacobian` back to one pass per row, where hooks run.

use eingrad::func::{jacobian, JacobianMode};
use eingrad::{einsum, DType, Result, Tensor};

fn close(a: &Tensor, b: &Tensor, tol: f64, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    for (k, (x, y)) in a.to_vec_f64().iter().zip(b.to_vec_f64()).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}[{k}]: {x} vs {y}"
        );
    }
}

/// einsum + broadcast bias + permute + sub/mul with a rank-1 operand + softmax + a reduction +
/// broadcast_to.
fn mixed(xs: &[Tensor]) -> Result<Vec<Tensor>> {
    let (x, w, b) = (&xs[0], &xs[1], &xs[2]);
    let h = einsum("bij,jk->bik", &[x, w])?.add(b)?; // (2,3,4) + (4,)
    let p = h.permute(&[2, 0, 1])?.contiguous()?; // (4,2,3)
    let s = p
        .tanh()?
        .mul(&b.reshape(&[4, 1, 1])?)?
        .sub(&p.softmax(-1)?)?;
    let total = s.sum(&[1], false)?; // (4,3)
    let wide = b.broadcast_to(&[3, 4])?; // an explicit broadcast node
    Ok(vec![total, h.mul_scalar(0.5)?.add(&wide)?])
}

fn inputs() -> Vec<Tensor> {
    vec![
        Tensor::randn(&[2, 3, 5], DType::F64, 1).unwrap(),
        Tensor::randn(&[5, 4], DType::F64, 2).unwrap(),
        Tensor::randn(&[4], DType::F64, 3).unwrap(),
    ]
}

#[test]
fn batched_rows_match_forward_mode_on_a_mixed_graph() {
    let rev = jacobian(&mixed, &inputs(), JacobianMode::Reverse).unwrap();
    let fwd = jacobian(&mixed, &inputs(), JacobianMode::Forward).unwrap();
    for (i, (ra, fa)) in rev.iter().zip(&fwd).enumerate() {
        for (j, (r, f)) in ra.iter().zip(fa).enumerate() {
            close(r, f, 1e-12, &format!("block ({i}, {j})"));
        }
    }
    assert_eq!(rev[0][0].dims(), &[4, 3, 2, 3, 5]);
    assert_eq!(rev[1][2].dims(), &[2, 3, 4, 4]);
}

#[test]
fn an_unused_input_gives_a_zero_block_in_batched_rows() {
    let f = |xs: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![xs[0].exp()?.mul_scalar(2.0)?]) };
    let xs = vec![
        Tensor::randn(&[3], DType::F64, 4).unwrap(),
        Tensor::randn(&[2, 2], DType::F64, 5).unwrap(),
    ];
    let j = jacobian(&f, &xs, JacobianMode::Reverse).unwrap();
    assert_eq!(j[0][1].dims(), &[3, 2, 2]);
    assert!(j[0][1].to_vec_f64().iter().all(|&v| v == 0.0));
    let e: Vec<f64> = xs[0].to_vec_f64().iter().map(|v| 2.0 * v.exp()).collect();
    let d = j[0][0].to_vec_f64();
    for k in 0..3 {
        for l in 0..3 {
            let want = if k == l { e[k] } else { 0.0 };
            assert!((d[k * 3 + l] - want).abs() < 1e-12);
        }
    }
}

#[test]
fn a_hook_in_the_graph_is_honoured_row_by_row() {
    let plain = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        let h = einsum("ij,jk->ik", &[&xs[0], &xs[1]])?;
        Ok(vec![h.sin()?])
    };
    let hooked = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        let h = einsum("ij,jk->ik", &[&xs[0], &xs[1]])?;
        let _handle = h.register_hook(|g| Ok(Some(g.mul_scalar(2.0)?)));
        Ok(vec![h.sin()?])
    };
    let xs = vec![
        Tensor::randn(&[2, 3], DType::F64, 6).unwrap(),
        Tensor::randn(&[3, 4], DType::F64, 7).unwrap(),
    ];
    let a = jacobian(&plain, &xs, JacobianMode::Reverse).unwrap();
    let b = jacobian(&hooked, &xs, JacobianMode::Reverse).unwrap();
    for j in 0..2 {
        close(&b[0][j], &a[0][j].mul_scalar(2.0).unwrap(), 1e-12, "hooked");
    }
}

/// Many output rows: the rows are read in several batched chunks.
#[test]
fn large_outputs_are_read_in_chunks() {
    let f = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        Ok(vec![einsum("i,j->ij", &[&xs[0], &xs[1]])?.tanh()?])
    };
    let xs = vec![
        Tensor::randn(&[60], DType::F64, 8).unwrap(),
        Tensor::randn(&[50], DType::F64, 9).unwrap(),
    ];
    let rev = jacobian(&f, &xs, JacobianMode::Reverse).unwrap();
    let fwd = jacobian(&f, &xs, JacobianMode::Forward).unwrap();
    for j in 0..2 {
        close(&rev[0][j], &fwd[0][j], 1e-12, "chunked");
    }
}
