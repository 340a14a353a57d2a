"""The Tensor class: construction, conversion, attributes, repr and operators."""
import math

import numpy as np
import pytest

import eingrad


def test_tensor_from_lists_is_float32_and_keeps_values():
    x = eingrad.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert x.dtype == eingrad.float32
    assert x.shape == (2, 2) and x.ndim == 2 and len(x) == 2 and x.numel() == 4
    assert x.size() == (2, 2) and x.size(1) == 2 and x.size(-1) == 2
    np.testing.assert_array_equal(x.numpy(), np.array([[1, 2], [3, 4]], dtype=np.float32))
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_numpy_round_trip_keeps_dtype_and_copies():
    a = np.arange(6.0).reshape(2, 3)
    x = eingrad.from_numpy(a)
    assert x.dtype == eingrad.float64
    a[0, 0] = 100.0
    assert x.numpy()[0, 0] == 0.0
    np.testing.assert_array_equal(np.asarray(x), np.arange(6.0).reshape(2, 3))
    assert eingrad.from_numpy(a.astype(np.float32)).dtype == eingrad.float32
    assert eingrad.tensor(np.arange(3)).dtype == eingrad.float32  # ints become float32


def test_dtype_argument_accepts_eingrad_numpy_and_string_names():
    for d in (eingrad.float64, np.float64, "float64", eingrad.double):
        assert eingrad.zeros(2, dtype=d).dtype == eingrad.float64
    with pytest.raises((TypeError, ValueError), match="dtype"):
        eingrad.zeros(2, dtype="int8")


def test_factories_shapes_and_values():
    assert eingrad.zeros(2, 3).shape == (2, 3)
    assert eingrad.ones((2, 3)).tolist() == [[1.0] * 3] * 2
    assert eingrad.full((2,), 7.0).tolist() == [7.0, 7.0]
    np.testing.assert_allclose(eingrad.arange(5).numpy(), np.arange(5.0))
    np.testing.assert_allclose(eingrad.arange(1, 2, 0.25).numpy(), np.arange(1, 2, 0.25))
    np.testing.assert_allclose(eingrad.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5), rtol=1e-6)
    np.testing.assert_array_equal(eingrad.eye(3).numpy(), np.eye(3))
    x = eingrad.randn(3, 4, dtype=eingrad.float64)
    assert eingrad.zeros_like(x).dtype == eingrad.float64 and eingrad.ones_like(x).shape == (3, 4)
    r = eingrad.rand(1000, seed=1).numpy()
    assert r.min() >= 0 and r.max() < 1 and abs(r.mean() - 0.5) < 0.05


def test_seeds_make_draws_reproducible_and_successive_draws_differ():
    assert eingrad.randn(5, seed=3).tolist() == eingrad.randn(5, seed=3).tolist()
    eingrad.manual_seed(11)
    a, b = eingrad.randn(5), eingrad.randn(5)
    assert a.tolist() != b.tolist()
    eingrad.manual_seed(11)
    assert eingrad.randn(5).tolist() == a.tolist()


def test_repr_is_pytorchs():
    assert repr(eingrad.tensor([1.0, 2.5])) == "tensor([1.0000, 2.5000])"
    assert repr(eingrad.tensor([1.0], dtype=eingrad.float64)) == "tensor([1.], dtype=eingrad.float64)"
    assert repr(eingrad.float32) == "eingrad.float32"


def test_operators_broadcast_with_scalars_and_arrays():
    a = np.random.default_rng(0).standard_normal((3, 4))
    b = np.random.default_rng(1).standard_normal((4,))
    x, y = eingrad.from_numpy(a), eingrad.from_numpy(b)
    np.testing.assert_allclose((x + y).numpy(), a + b)
    np.testing.assert_allclose((x - 2).numpy(), a - 2)
    np.testing.assert_allclose((2 - x).numpy(), 2 - a)
    np.testing.assert_allclose((x * y).numpy(), a * b)
    np.testing.assert_allclose((1 / (x * x + 1)).numpy(), 1 / (a * a + 1))
    np.testing.assert_allclose((abs(x) ** 1.5).numpy(), np.abs(a) ** 1.5)
    np.testing.assert_allclose((2 ** x).numpy(), 2 ** a)
    np.testing.assert_allclose((-x).numpy(), -a)
    np.testing.assert_allclose((x @ eingrad.from_numpy(a.T)).numpy(), a @ a.T)
    np.testing.assert_allclose((x > 0).numpy(), (a > 0).astype(np.float64))
    np.testing.assert_allclose((x == x).numpy(), np.ones_like(a))


def test_scalar_conversions():
    x = eingrad.tensor(2.5)
    assert x.item() == 2.5 and float(x) == 2.5 and int(x) == 2 and bool(x)
    with pytest.raises((ValueError, RuntimeError), match="one element|1 element|numel"):
        eingrad.ones(3).item()


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TypeError, match="string"):
        eingrad.tensor("abc")
    with pytest.raises(ValueError, match=r"\[2, 3\]|\(2, 3\)|shape"):
        eingrad.ones(2, 3) + eingrad.ones(4)
    with pytest.raises(ValueError):
        eingrad.tensor([[1.0, 2.0], [3.0]])
    with pytest.raises((TypeError, ValueError)):
        eingrad.ones(2, 3) @ eingrad.ones(2, 3)
    with pytest.raises(TypeError):
        eingrad.ones(2) + "x"
    assert math.isnan(eingrad.tensor(float("nan")).item())


def _runs_while(op):
    """True when the main thread ran Python code in the middle of `op` (one native call)
    running in another thread: possible only if `op` released the GIL. A call that keeps the
    GIL shuts the main thread out from its start to its end."""
    import threading
    import time

    span = []

    def work():
        t0 = time.perf_counter()
        op()
        span.extend((t0, time.perf_counter()))

    t = threading.Thread(target=work)
    stamps = []
    t.start()
    while t.is_alive():
        stamps.append(time.perf_counter())
    t.join()
    t0, t1 = span
    lo, hi = t0 + 0.25 * (t1 - t0), t1 - 0.25 * (t1 - t0)
    return any(lo < s < hi for s in stamps)


def test_the_gil_check_can_fail():
    import random

    values = [random.random() for _ in range(1_000_000)]
    assert not _runs_while(lambda: sorted(values))  # sorting floats keeps the GIL


def test_heavy_ops_and_backward_release_the_gil():
    a = eingrad.randn(900, 900, seed=1)
    b = eingrad.randn(900, 900, seed=2)
    assert _runs_while(lambda: eingrad.einsum("ij,jk->ik", a, b)), "einsum held the GIL"
    x = a.detach().requires_grad_()
    y = eingrad.einsum("ij,jk->ik", eingrad.einsum("ij,jk->ik", x, b), b).sum()
    assert _runs_while(y.backward), "backward held the GIL"


def test_tensor_of_a_tensor_is_a_fresh_copy_without_history():
    x = eingrad.tensor([1.0, -0.0], requires_grad=True)
    y = eingrad.tensor(x * 2)
    assert y.is_leaf and not y.requires_grad and y.tolist() == [2.0, -0.0]
    z = eingrad.tensor(x)
    z[0] = 5.0  # a plain tensor: written in place, x is untouched
    assert x.tolist()[0] == 1.0 and z.tolist()[0] == 5.0
    assert str(eingrad.tensor(x)[1].item()) == "-0.0"
