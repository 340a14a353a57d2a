"""Products (matmul, mm, bmm, dot, outer, tensordot) and logic on float masks."""
import numpy as np
import pytest

import eingrad

rng = np.random.default_rng(0)


def t(a):
    return eingrad.from_numpy(np.asarray(a, dtype=np.float64))


def test_products_against_numpy():
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    np.testing.assert_allclose(t(a).mm(t(b)).numpy(), a @ b)
    np.testing.assert_allclose(eingrad.mm(t(a), t(b)).numpy(), a @ b)
    np.testing.assert_allclose(t(a).matmul(t(b[:, 0])).numpy(), a @ b[:, 0])
    x, y = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5))
    np.testing.assert_allclose(t(x).bmm(t(y)).numpy(), x @ y)
    u, v = rng.standard_normal(4), rng.standard_normal(4)
    assert abs(t(u).dot(t(v)).item() - u @ v) < 1e-12
    np.testing.assert_allclose(eingrad.outer(t(u), t(v[:3])).numpy(), np.outer(u, v[:3]))
    p, q = rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 4, 5))
    np.testing.assert_allclose(eingrad.tensordot(t(p), t(q)).numpy(), np.tensordot(p, q))
    np.testing.assert_allclose(eingrad.tensordot(t(p), t(q), dims=0).numpy(),
                               np.tensordot(p, q, axes=0))
    np.testing.assert_allclose(eingrad.tensordot(t(p), t(q), dims=([1], [0])).numpy(),
                               np.tensordot(p, q, axes=([1], [0])))


def test_products_are_differentiable():
    a = eingrad.randn(3, 4, dtype=eingrad.float64, seed=1).requires_grad_()
    b = eingrad.randn(4, 2, dtype=eingrad.float64, seed=2)
    assert eingrad.func.gradcheck(lambda a: a.mm(b), (a,))
    assert eingrad.func.gradcheck(lambda a: eingrad.tensordot(a, b, dims=1), (a,))


def test_product_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"mm: mat2 must have 2 dims, got shape \[3\]"):
        eingrad.ones(2, 3).mm(eingrad.ones(3))
    with pytest.raises(ValueError, match="bmm: batch sizes differ"):
        eingrad.ones(2, 3, 4).bmm(eingrad.ones(3, 4, 5))
    with pytest.raises(ValueError, match="dot: input must have 1 dims"):
        eingrad.ones(2, 2).dot(eingrad.ones(2))
    with pytest.raises(ValueError, match="tensordot: dim 2 of a"):
        eingrad.tensordot(eingrad.ones(2, 3, 4), eingrad.ones(5, 4), dims=([2], [0]))
    with pytest.raises(ValueError, match="out of range"):
        eingrad.tensordot(eingrad.ones(2), eingrad.ones(2), dims=([3], [0]))
    with pytest.raises(TypeError, match="tensordot: dims"):
        eingrad.tensordot(eingrad.ones(2), eingrad.ones(2), dims="x")


def test_mask_logic_matches_numpy_bools():
    a, b = rng.standard_normal(50), rng.standard_normal(50)
    ma, mb = t(a) > 0, t(b) > 0
    na, nb = a > 0, b > 0
    np.testing.assert_array_equal((~ma).numpy(), (~na).astype(float))
    np.testing.assert_array_equal((ma & mb).numpy(), (na & nb).astype(float))
    np.testing.assert_array_equal((ma | mb).numpy(), (na | nb).astype(float))
    np.testing.assert_array_equal((ma ^ mb).numpy(), (na ^ nb).astype(float))
    np.testing.assert_array_equal(eingrad.logical_and(ma, True).numpy(), na.astype(float))
    np.testing.assert_array_equal((False | ma).numpy(), na.astype(float))
    np.testing.assert_array_equal((ma ^ 1).numpy(), (~na).astype(float))
    # any nonzero counts as true
    assert eingrad.tensor([2.0, -0.5, 0.0]).logical_not().tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(TypeError):
        ma & "x"


def test_small_torch_compat_names():
    x = eingrad.ones(2)
    assert x.cpu() is x and eingrad.is_tensor(x) and not eingrad.is_tensor(np.ones(2))
    assert eingrad.numel(eingrad.ones(2, 3)) == 6
    assert eingrad.empty(2, 3).tolist() == [[0.0] * 3] * 2
    assert not eingrad.detach(eingrad.ones(2, requires_grad=True) * 2).requires_grad
