"""eingrad.func (torch.func's names) and eingrad.autograd.functional: transforms of Python
callables, checked against NumPy / math / finite differences in float64."""
import math

import numpy as np
import pytest

import eingrad
from eingrad import autograd, func
from eingrad.autograd import Function, functional

from support import F64, numeric_jacobian, t64, total  # noqa: E402,F401


A = np.array([[0.5, -1.0, 0.3], [2.0, 0.25, -0.7]])
B = np.array([[1.5, 0.3], [-0.7, 1.1], [0.2, -0.4]])


def f_mix(x, w):
    """A function of two matrices mixing matmul, products and quotients."""
    h = x @ w
    return h * h / (h + 3.0)


def f_mix_np(x, w):
    h = x @ w
    return h * h / (h + 3.0)


# ---- vjp / grad ----


def test_vjp_matches_numeric_jacobian():
    out, vjp_fn = func.vjp(f_mix, t64(A), t64(B))
    np.testing.assert_allclose(out.numpy(), f_mix_np(A, B), rtol=1e-14)
    assert not out.requires_grad
    u = np.array([[1.0, -2.0], [0.5, 3.0]])
    gx, gw = vjp_fn(t64(u))
    Jx = numeric_jacobian(lambda x: f_mix_np(x, B), A)
    Jw = numeric_jacobian(lambda w: f_mix_np(A, w), B)
    np.testing.assert_allclose(gx.numpy(), np.tensordot(u, Jx, 2), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gw.numpy(), np.tensordot(u, Jw, 2), rtol=1e-6, atol=1e-8)
    gx2, _ = vjp_fn(t64(u))  # vjp_fn can be called again
    np.testing.assert_allclose(gx2.numpy(), gx.numpy())


def test_vjp_tuple_outputs_unused_primal_and_aux():
    x, z = t64([1.0, 2.0]), t64([5.0])
    out, vjp_fn, aux = func.vjp(lambda x, z: ((x * x, x * 3.0), x * 10.0), x, z, has_aux=True)
    assert isinstance(out, tuple) and len(out) == 2
    np.testing.assert_allclose(aux.numpy(), [10.0, 20.0])
    gx, gz = vjp_fn((t64([1.0, 1.0]), t64([1.0, 0.0])))
    np.testing.assert_allclose(gx.numpy(), [2.0 + 3.0, 4.0])
    np.testing.assert_allclose(gz.numpy(), [0.0])  # unused primal: zeros
    with pytest.raises(ValueError, match="cotangent 0 has shape"):
        vjp_fn((t64([1.0]), t64([1.0, 0.0])))
    with pytest.raises(ValueError, match="2 outputs but 1 cotangents"):
        vjp_fn(t64([1.0, 1.0]))


def test_grad_and_grad_and_value():
    x = t64([1.0, -2.0, 0.5])
    g = func.grad(lambda x: total(x * x * x))(x)
    np.testing.assert_allclose(g.numpy(), 3.0 * x.numpy() ** 2)
    (gy, v) = func.grad_and_value(lambda x, y: total(x * y), argnums=1)(x, t64([1.0, 1.0, 1.0]))
    np.testing.assert_allclose(gy.numpy(), x.numpy())
    assert v.item() == pytest.approx(-0.5)
    gs = func.grad(lambda x, y: total(x * y), argnums=(0, 1))(x, t64([2.0, 2.0, 2.0]))
    assert isinstance(gs, tuple) and len(gs) == 2
    with pytest.raises(RuntimeError, match="one-element"):
        func.grad(lambda x: x * x)(x)
    # grad of grad: d²/dx² Σ x³ = 6x
    gg = func.grad(lambda x: total(func.grad(lambda y: total(y * y * y))(x)))(x)
    np.testing.assert_allclose(gg.numpy(), 6.0 * x.numpy())


# ---- jvp ----


def test_jvp_matches_finite_differences():
    v = np.array([[0.3, -0.2, 1.0], [0.0, 0.5, -1.5]])
    out, t = func.jvp(lambda x: f_mix(x, t64(B)), (t64(A),), (t64(v),))
    J = numeric_jacobian(lambda x: f_mix_np(x, B), A)
    np.testing.assert_allclose(out.numpy(), f_mix_np(A, B), rtol=1e-14)
    np.testing.assert_allclose(t.numpy(), np.tensordot(J, v, 2), rtol=1e-6, atol=1e-8)
    outs, ts = func.jvp(lambda x: (x * x, x * 2.0), (t64([3.0]),), (t64([1.0]),))
    assert isinstance(ts, tuple)
    np.testing.assert_allclose([ts[0].item(), ts[1].item()], [6.0, 2.0])
    with pytest.raises(ValueError, match="tangent 0 has shape"):
        func.jvp(lambda x: x * x, (t64([1.0]),), (t64([1.0, 2.0]),))
    with pytest.raises(TypeError, match="tuples"):
        func.jvp(lambda x: x * x, t64([1.0]), t64([1.0]))


# ---- Jacobians ----


def test_jacrev_and_jacfwd_match_numeric_jacobian():
    Jx = numeric_jacobian(lambda x: f_mix_np(x, B), A)
    Jw = numeric_jacobian(lambda w: f_mix_np(A, w), B)
    for transform in (func.jacrev, func.jacfwd):
        jx = transform(f_mix)(t64(A), t64(B))
        assert jx.shape == (2, 2, 2, 3)
        np.testing.assert_allclose(jx.numpy(), Jx, rtol=1e-6, atol=1e-8)
        jx, jw = transform(f_mix, argnums=(0, 1))(t64(A), t64(B))
        np.testing.assert_allclose(jw.numpy(), Jw, rtol=1e-6, atol=1e-8)
        jw = transform(f_mix, argnums=-1)(t64(A), t64(B))
        np.testing.assert_allclose(jw.numpy(), Jw, rtol=1e-6, atol=1e-8)


def test_jacobian_nesting_like_torch_functional():
    x, y = t64([1.0, 2.0]), t64([3.0])

    def f(x, y):
        return x * y, x * x

    (j00, j01), (j10, j11) = func.jacobian(f, (x, y))
    np.testing.assert_allclose(j00.numpy(), np.diag([3.0, 3.0]))
    np.testing.assert_allclose(j01.numpy(), [[1.0], [2.0]])
    np.testing.assert_allclose(j10.numpy(), np.diag([2.0, 4.0]))
    np.testing.assert_allclose(j11.numpy(), [[0.0], [0.0]])  # unused input: zero block
    for mode in ("rev", "fwd", "auto"):
        j = func.jacobian(lambda x: x * x * x, x, mode=mode)
        np.testing.assert_allclose(j.numpy(), np.diag([3.0, 12.0]))
    with pytest.raises(ValueError, match='mode must be "rev", "fwd" or "auto", got "sideways"'):
        func.jacobian(lambda x: x, x, mode="sideways")


def test_transform_argument_errors():
    x = t64([1.0])
    with pytest.raises(ValueError, match="argnums 2 is out of range"):
        func.jacrev(lambda a, b: a * b, argnums=2)(x, x)
    with pytest.raises(TypeError, match="jacrev: the function returned 3.0; expected a Tensor"):
        func.jacrev(lambda a: 3.0)(x)
    with pytest.raises(TypeError, match=r"jacfwd: output 1 of the function must be a Tensor, got 'no'"):
        func.jacfwd(lambda a: (a, "no"))(x)
    with pytest.raises(TypeError, match="jacobian: argument 0 must be a Tensor"):
        func.jacobian(lambda a: a, (2.0,))
    with pytest.raises(TypeError, match="func must be callable"):
        func.jacobian(3, x)


class UserError(Exception):
    pass


def test_exceptions_inside_the_function_propagate_unchanged():
    def boom(x):
        raise UserError("inside func")

    x = t64([1.0, 2.0])
    for call in (
        lambda: func.jacrev(boom)(x),
        lambda: func.jacfwd(boom)(x),
        lambda: func.jvp(boom, (x,), (x,)),
        lambda: func.hessian(boom)(x),
        lambda: func.hvp(boom, (x,), (x,)),
        lambda: func.vjp(boom, x),
        lambda: func.gradcheck(boom, (t64([1.0], requires_grad=True),)),
        lambda: func.verify_backward(boom, boom, (x,)),
    ):
        with pytest.raises(UserError, match="inside func"):
            call()


def test_non_tensor_arguments_pass_through():
    j = func.jacrev(lambda x, k, name: x * k, argnums=0)(t64([1.0, 2.0]), 4.0, "scale")
    np.testing.assert_allclose(j.numpy(), np.diag([4.0, 4.0]))


# ---- Hessians ----


def cubic(x):
    # f = Σ x_i³ + x0 x1
    return total(x * x * x) + total(x * t64([1.0, 0.0])) * total(x * t64([0.0, 1.0]))


def test_hessian_matches_analytic():
    a = np.array([1.0, -2.0])
    want = np.diag(6.0 * a) + np.array([[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(func.hessian(cubic)(t64(a)).numpy(), want, rtol=1e-12)
    ((h,),) = func.hessian(cubic, argnums=(0,))(t64(a))
    np.testing.assert_allclose(h.numpy(), want, rtol=1e-12)
    # jacfwd(jacrev(f)) composes to the same Hessian
    np.testing.assert_allclose(func.jacfwd(func.jacrev(cubic))(t64(a)).numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(func.jacrev(func.jacrev(cubic))(t64(a)).numpy(), want, rtol=1e-12)
    with pytest.raises(ValueError, match="one-element"):
        func.hessian(lambda x: x * x)(t64(a))


def test_hessian_of_two_arguments():
    def f(x, y):
        return total(x * x * y)

    x, y = t64([1.0, 2.0]), t64([3.0, 4.0])
    (hxx, hxy), (hyx, hyy) = func.hessian(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(hxx.numpy(), np.diag([6.0, 8.0]))
    np.testing.assert_allclose(hxy.numpy(), np.diag([2.0, 4.0]))
    np.testing.assert_allclose(hyx.numpy(), np.diag([2.0, 4.0]))
    np.testing.assert_allclose(hyy.numpy(), np.zeros((2, 2)))


def test_hvp_equals_hessian_times_vector():
    a, v = np.array([1.0, -2.0]), np.array([0.5, 2.0])
    H = np.diag(6.0 * a) + np.array([[0.0, 1.0], [1.0, 0.0]])
    out, (hv,) = func.hvp(cubic, (t64(a),), (t64(v),))
    np.testing.assert_allclose(out.item(), np.sum(a**3) + a[0] * a[1])
    np.testing.assert_allclose(hv.numpy(), H @ v, rtol=1e-12)
    out, (h1, h2) = func.hvp(lambda x, y: total(x * x * y), (t64([1.0, 2.0]), t64([3.0, 4.0])),
                             (t64([1.0, 0.0]), t64([0.0, 1.0])))
    np.testing.assert_allclose(h1.numpy(), [6.0, 4.0])  # Hxx·e0 + Hxy·e1
    np.testing.assert_allclose(h2.numpy(), [2.0, 0.0])  # Hyx·e0
    with pytest.raises(ValueError, match="shape"):
        func.hvp(cubic, (t64(a),), (t64([1.0]),))


# ---- einsum_jacobian ----


def test_einsum_jacobian_closed_form():
    x, w = t64(A), t64(B)
    J, pattern = func.einsum_jacobian("ij,jk->ik", (x, w), 0)
    assert pattern == "jk->ikij"
    want = np.einsum("ac,jk->akcj", np.eye(2), B)  # J[i,k,i',j] = δ(i,i') w[j,k]
    np.testing.assert_allclose(J.numpy(), want)
    J1, p1 = func.einsum_jacobian("ij,jk->ik", (x, w), -1)
    np.testing.assert_allclose(J1.numpy(), func.jacrev(lambda w: x @ w)(w).numpy(), rtol=1e-14)
    assert p1 == "ij->ikjk"
    with pytest.raises(ValueError, match="k = 2"):
        func.einsum_jacobian("ij,jk->ik", (x, w), 2)


# ---- checks ----


class WrongSquare(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x * 2.5  # should be 2


def test_verify_backward_report():
    x = t64([0.3, -1.1, 2.0])
    ok = func.verify_backward(lambda x: x * x, lambda x: x**2.0, (x,), finite_differences=True)
    assert ok.passed and bool(ok) and ok.first_failure is None
    assert "passed" in str(ok) and "gradient of input 0" in repr(ok)
    assert ok.dtype == F64 and ok.atol == 1e-10 and ok.cotangents > 0
    bad = func.verify_backward(WrongSquare.apply, lambda x: x * x, x)
    assert not bad.passed
    assert bad.first_failure == "gradient of input 0"
    assert "FAIL" in str(bad)
    (fwd, grad_check) = bad.checks
    assert fwd["passed"] and not grad_check["passed"]
    assert grad_check["custom"] == pytest.approx(1.25 * grad_check["reference"])


def test_gradcheck_and_gradgradcheck():
    x = t64([0.3, -1.1, 2.0], requires_grad=True)
    assert func.gradcheck(lambda x: x * x / (x + 3.0), (x,))
    assert autograd.gradcheck(lambda x, k: x * k, (x, 2.0))
    assert func.gradgradcheck(lambda x: x * x * x, (x,))
    assert func.gradgradcheck(lambda x: x * x * x, (x,), grad_outputs=(t64([1.0, 2.0, -1.0]),))
    with pytest.raises(autograd.GradcheckError, match="Jacobian mismatch.*analytic"):
        func.gradcheck(WrongSquare.apply, (x,))
    assert func.gradcheck(WrongSquare.apply, (x,), raise_exception=False) is False
    assert issubclass(autograd.GradcheckError, RuntimeError)
    with pytest.raises(ValueError, match="finite differences need f64"):
        func.gradcheck(lambda x: x, (eingrad.ones(2, requires_grad=True),))
    with pytest.raises(ValueError, match="at least one input tensor to require gradient"):
        func.gradcheck(lambda x: x, (t64([1.0]),))
    with pytest.raises(TypeError, match="unexpected keyword"):
        func.gradcheck(lambda x: x, (x,), tolerance=1.0)


# ---- torch.autograd.functional ----


def test_functional_jacobian_like_seed_000():
    x = t64([1.0, 2.0, 3.0])
    J = functional.jacobian(lambda x: x * x, x)
    np.testing.assert_allclose(J.numpy(), np.diag([2.0, 4.0, 6.0]))
    Jf = functional.jacobian(lambda x: x * x, x, strategy="forward-mode")
    np.testing.assert_allclose(Jf.numpy(), J.numpy())
    (ja, jb) = functional.jacobian(lambda a, b: a * b, (x, x))
    np.testing.assert_allclose(ja.numpy(), np.diag([1.0, 2.0, 3.0]))
    import eingrad.autograd.functional as fmod  # importable as a module, as in torch

    assert fmod.jacobian is functional.jacobian


def test_functional_create_graph_keeps_results_differentiable():
    x = t64([1.0, 2.0], requires_grad=True)
    J = functional.jacobian(lambda x: x * x * x, x, create_graph=True)
    assert J.requires_grad
    (g,) = autograd.grad(total(J), x)
    np.testing.assert_allclose(g.numpy(), [6.0, 12.0])  # d/dx Σ diag(3x²)
    assert not functional.jacobian(lambda x: x * x, x).requires_grad


def test_functional_hessian_vjp_jvp_hvp_vhp():
    a, v = np.array([1.0, -2.0]), np.array([0.5, 2.0])
    H = np.diag(6.0 * a) + np.array([[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(functional.hessian(cubic, t64(a)).numpy(), H, rtol=1e-12)
    out, g = functional.vjp(lambda x: x * x, t64(a), t64(v))
    np.testing.assert_allclose(g.numpy(), 2 * a * v)
    out, g = functional.vjp(cubic, t64(a))  # v omitted for a scalar output
    np.testing.assert_allclose(g.numpy(), 3 * a**2 + a[::-1])
    out, t = functional.jvp(lambda x: x * x, t64(a), t64(v))
    np.testing.assert_allclose(t.numpy(), 2 * a * v)
    out, hv = functional.hvp(cubic, t64(a), t64(v))
    np.testing.assert_allclose(hv.numpy(), H @ v, rtol=1e-12)
    out, vh = functional.vhp(cubic, t64(a), t64(v))
    np.testing.assert_allclose(vh.numpy(), v @ H, rtol=1e-12)
    with pytest.raises(NotImplementedError, match="strict"):
        functional.jacobian(lambda x: x, t64(a), strict=True)


# ---- against PyTorch ----


def test_transforms_match_torch():
    torch = pytest.importorskip("torch")
    tf = torch.func

    def ft(x, w):
        h = x @ w
        return h * h / (h + 3.0)

    xt, wt = torch.tensor(A), torch.tensor(B)
    np.testing.assert_allclose(
        func.jacrev(f_mix, argnums=(0, 1))(t64(A), t64(B))[1].numpy(),
        tf.jacrev(ft, argnums=(0, 1))(xt, wt)[1].numpy(),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        func.jacfwd(f_mix)(t64(A), t64(B)).numpy(), tf.jacfwd(ft)(xt, wt).numpy(), rtol=1e-12
    )
    a = np.array([0.7, -1.3, 0.4])

    def gt(x):
        return (x * x * x).sum() + (x[0] * x[1])

    def ge(x):
        return total(x * x * x) + total(x * t64([1.0, 0.0, 0.0])) * total(x * t64([0.0, 1.0, 0.0]))

    np.testing.assert_allclose(
        func.hessian(ge)(t64(a)).numpy(), tf.hessian(gt)(torch.tensor(a)).numpy(), rtol=1e-12
    )
    np.testing.assert_allclose(
        functional.jacobian(lambda x: x * x, t64(a)).numpy(),
        torch.autograd.functional.jacobian(lambda x: x * x, torch.tensor(a)).numpy(),
    )
    assert math.isclose(
        float(tf.grad(gt)(torch.tensor(a))[0]), float(func.grad(ge)(t64(a)).numpy()[0]),
        rel_tol=1e-12,
    )
