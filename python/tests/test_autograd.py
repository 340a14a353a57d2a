"""Autograd from Python: Tensor.backward/.grad/requires_grad/retain_grad/register_hook/
grad_fn, eingrad.autograd.grad/backward, grad mode and anomaly mode."""
import math
import threading

import numpy as np
import pytest

import eingrad
from eingrad import autograd

from support import F64, numeric_grad, t64, total  # noqa: E402,F401


# ---- requires_grad, is_leaf, grad_fn ----


def test_requires_grad_setter_and_method():
    x = eingrad.ones(3)
    assert not x.requires_grad and x.is_leaf
    x.requires_grad = True
    assert x.requires_grad
    assert x.requires_grad_(False) is x and not x.requires_grad
    assert x.requires_grad_() is x and x.requires_grad
    y = x * 2
    assert not y.is_leaf and y.requires_grad
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False
    y.requires_grad = True  # allowed (a no-op) on a non-leaf, as in PyTorch


def test_grad_fn_names_the_op_and_links_inputs():
    x = eingrad.ones(2, requires_grad=True)
    c = eingrad.ones(2)
    assert x.grad_fn is None and c.grad_fn is None
    y = x * c
    node = y.grad_fn
    assert node.name() == "mul"
    (n0, i0), (n1, i1) = node.next_functions
    assert n0.name() == "AccumulateGrad" and n0.variable.requires_grad
    assert n1 is None and i0 == i1 == 0
    z = y + 1.0
    assert z.grad_fn.next_functions[0][0] == y.grad_fn
    assert "mul" in repr(node)


# ---- backward and .grad ----


def test_backward_matches_finite_differences():
    a = np.array([0.3, -1.2, 2.0])
    x = t64(a, requires_grad=True)
    y = total(x * x * x / (x * x + 1.0))
    y.backward()
    want = numeric_grad(lambda v: np.sum(v**3 / (v**2 + 1)), a)
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-7, atol=1e-9)
    assert x.grad.dtype == F64


def test_backward_with_gradient_and_implicit_gradient_errors():
    x = t64([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).backward(t64([1.0, 0.0, 2.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 0.0, 12.0])
    with pytest.raises(RuntimeError, match=r"implicitly created only for an output with one element"):
        (x * x).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        t64([1.0]).backward()
    with pytest.raises(RuntimeError, match=r"grad_outputs\[0\] has shape \[2\] but output 0 has shape \[3\]"):
        (x * x).backward(t64([1.0, 2.0]))


def test_grad_accumulates_and_can_be_assigned_or_cleared():
    x = t64([1.0, 2.0], requires_grad=True)
    assert x.grad is None
    total(x * 3.0).backward()
    total(x * 3.0).backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
    x.grad = None
    assert x.grad is None
    x.grad = t64([5.0, 5.0])
    total(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
    with pytest.raises(RuntimeError, match=r"shape \[3\]"):
        x.grad = t64([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match="F32"):
        x.grad = eingrad.ones(2)
    with pytest.raises(TypeError, match="must be a Tensor"):
        x.grad = [1.0, 2.0]
    del x.grad
    assert x.grad is None


def test_retain_graph_and_second_backward():
    x = t64([1.0, 2.0], requires_grad=True)
    y = total(x * x)
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_create_graph_gives_differentiable_gradients():
    x = t64([2.0], requires_grad=True)
    y = total(x * x * x)
    y.backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    np.testing.assert_allclose(g.numpy(), [12.0])
    x.grad = None
    total(g).backward()
    np.testing.assert_allclose(x.grad.numpy(), [12.0])  # d(3x²)/dx = 6x


def test_backward_inputs_restricts_accumulation():
    x = t64([1.0, 2.0], requires_grad=True)
    w = t64([3.0, 4.0], requires_grad=True)
    total(x * w).backward(inputs=[x])
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 4.0])
    assert w.grad is None
    total(x * w).backward(inputs=x)
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 8.0])


def test_retain_grad_keeps_non_leaf_gradient():
    x = t64([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    assert not h.retains_grad
    h.retain_grad()
    assert h.retains_grad and not x.retains_grad
    total(h * h).backward()
    np.testing.assert_allclose(h.grad.numpy(), [6.0, 12.0])
    np.testing.assert_allclose(x.grad.numpy(), [18.0, 36.0])
    h.grad = None  # seed 000 clears it this way
    assert h.grad is None
    other = x * 2.0
    total(other).backward()
    assert other.grad is None  # not retained
    with pytest.raises(RuntimeError, match="requires_grad=False"):
        t64([1.0]).retain_grad()


def test_detach_and_detach_in_place():
    x = t64([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    d = y.detach()
    assert not d.requires_grad and d.is_leaf and y.requires_grad
    assert y.detach_() is y
    assert not y.requires_grad and y.is_leaf
    np.testing.assert_allclose(y.numpy(), [2.0, 4.0])


# ---- hooks ----


def test_hooks_replace_observe_and_remove():
    x = t64([1.0, 2.0], requires_grad=True)
    seen = []
    h1 = x.register_hook(lambda g: seen.append(g.numpy().copy()))
    h2 = x.register_hook(lambda g: g * 10.0)
    total(x * x).backward()
    np.testing.assert_allclose(seen[0], [2.0, 4.0])
    np.testing.assert_allclose(x.grad.numpy(), [20.0, 40.0])
    h2.remove()
    h2.remove()  # twice is fine
    x.grad = None
    total(x * x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    assert len(seen) == 2
    h1.remove()


def test_hook_on_intermediate_changes_upstream_gradient():
    x = t64([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    h.register_hook(lambda g: g * 0.0 + 1.0)
    total(h * h).backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


class HookError(Exception):
    pass


def test_hook_exceptions_propagate_unchanged():
    x = t64([1.0, 2.0], requires_grad=True)

    def bad(g):
        raise HookError("from the hook")

    x.register_hook(bad)
    with pytest.raises(HookError, match="from the hook"):
        total(x * x).backward()


def test_hook_bad_results_and_arguments():
    x = t64([1.0, 2.0], requires_grad=True)
    h = x.register_hook(lambda g: 3)
    with pytest.raises(TypeError, match="must return a Tensor or None"):
        total(x * x).backward()
    h.remove()
    h = x.register_hook(lambda g: t64([1.0, 2.0, 3.0]))
    with pytest.raises(RuntimeError, match=r"hook result has shape \[3\]"):
        total(x * x).backward()
    h.remove()
    with pytest.raises(TypeError, match="callable"):
        x.register_hook(3)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        t64([1.0]).register_hook(lambda g: g)


def test_hook_that_calls_grad_reenters_the_engine():
    # A hook may run a backward pass of its own (the GIL is released while backward runs).
    x = t64([1.0, 2.0], requires_grad=True)
    z = t64([3.0], requires_grad=True)
    inner = []

    def hook(g):
        assert not autograd.is_grad_enabled()  # hooks run in the pass's grad mode
        with autograd.enable_grad():
            (gz,) = autograd.grad(total(z * z), z)
        inner.append(gz.item())
        return g

    x.register_hook(hook)
    total(x * x).backward()
    assert inner == [6.0]


# ---- autograd.grad / autograd.backward ----


def test_grad_keywords_like_seed_000():
    x = t64([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    z = t64([1.0, 0.5, 2.0])
    (g,) = autograd.grad(outputs=y, inputs=x, grad_outputs=z, retain_graph=True)
    np.testing.assert_allclose(g.numpy(), [2.0, 2.0, 12.0])
    (g2,) = autograd.grad(y, [x], [z])
    np.testing.assert_allclose(g2.numpy(), g.numpy())
    assert x.grad is None  # grad never writes .grad


def test_grad_several_outputs_and_inputs():
    x = t64([1.0, 2.0], requires_grad=True)
    w = t64([3.0, -1.0], requires_grad=True)
    a, b = total(x * w), total(x * x)
    gx, gw = autograd.grad([a, b], (x, w))
    np.testing.assert_allclose(gx.numpy(), [3.0 + 2.0, -1.0 + 4.0])
    np.testing.assert_allclose(gw.numpy(), [1.0, 2.0])


def test_grad_unused_inputs_and_errors():
    x = t64([1.0, 2.0], requires_grad=True)
    u = t64([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="input 1 .* was not used"):
        autograd.grad(total(x * x), [x, u], retain_graph=True)
    gx, gu = autograd.grad(total(x * x), [x, u], allow_unused=True, retain_graph=True)
    assert gu is None
    gx, gu = autograd.grad(total(x * x), [x, u], materialize_grads=True)
    np.testing.assert_allclose(gu.numpy(), [0.0])
    with pytest.raises(RuntimeError, match="input 0 .* does not require grad"):
        autograd.grad(total(x * x), t64([1.0]))
    with pytest.raises(TypeError, match=r"grad: inputs\[0\] must be a Tensor"):
        autograd.grad(total(x * x), [1.0])
    with pytest.raises(RuntimeError, match="2 grad_outputs given for 1 outputs"):
        autograd.grad(x * x, x, [t64([1.0, 1.0]), t64([1.0, 1.0])])


def test_grad_create_graph_second_derivative_of_cube():
    x = t64([3.0], requires_grad=True)
    (g,) = autograd.grad(x * x * x, x, create_graph=True)
    (gg,) = autograd.grad(g, x)
    assert g.item() == 27.0 and gg.item() == 18.0


def test_backward_of_several_roots_like_seed_001():
    x = t64([1.0, 2.0], requires_grad=True)
    a, b = x * 2.0, x * 3.0
    autograd.backward([a, b], [t64([1.0, 1.0]), t64([1.0, 2.0])])
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 8.0])
    x.grad = None
    autograd.backward(total(x * x))  # one scalar root, no gradient
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    w = t64([1.0, 1.0], requires_grad=True)
    autograd.backward([total(x * w)], inputs=[w])
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 2.0])
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    with pytest.raises(RuntimeError, match="1 grad_tensors given for 2 outputs"):
        autograd.backward([x * 2.0, x * 3.0], [t64([1.0, 1.0])])


# ---- grad mode ----


def test_no_grad_context_manager_and_decorators():
    x = eingrad.ones(2, requires_grad=True)
    with autograd.no_grad():
        assert not autograd.is_grad_enabled()
        assert not (x * 2).requires_grad
        with autograd.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    assert autograd.is_grad_enabled() and (x * 2).requires_grad

    @autograd.no_grad()
    def called(t):
        return t * 2

    @autograd.no_grad
    def bare(t):
        return t * 2

    assert not called(x).requires_grad and not bare(x).requires_grad
    assert called.__name__ == "called"
    assert autograd.is_grad_enabled()


def test_no_grad_restores_mode_after_an_exception():
    with pytest.raises(KeyError):
        with autograd.no_grad():
            raise KeyError("x")
    assert autograd.is_grad_enabled()


def test_set_grad_enabled_as_function_and_context():
    with autograd.set_grad_enabled(False):
        assert not autograd.is_grad_enabled()
    assert autograd.is_grad_enabled()
    autograd.set_grad_enabled(False)
    try:
        assert not autograd.is_grad_enabled()
    finally:
        autograd.set_grad_enabled(True)
    assert autograd.is_grad_enabled()

    @autograd.set_grad_enabled(False)
    def f(t):
        return t * 2

    assert autograd.is_grad_enabled()
    assert not f(eingrad.ones(1, requires_grad=True)).requires_grad
    with autograd.inference_mode():
        assert not autograd.is_grad_enabled()


def test_grad_mode_switches_at_top_level_like_torch():
    x = eingrad.ones(2, requires_grad=True)
    with eingrad.no_grad():
        assert not (x * 2).requires_grad
        with eingrad.enable_grad():
            assert eingrad.is_grad_enabled()
    with eingrad.set_grad_enabled(False):
        assert not eingrad.is_grad_enabled()
    assert eingrad.no_grad is autograd.no_grad and eingrad.is_grad_enabled()
    v = autograd.Variable(x.detach(), requires_grad=True)
    assert v.requires_grad and v.is_leaf


def test_grad_mode_is_per_thread():
    seen = []
    with autograd.no_grad():
        th = threading.Thread(target=lambda: seen.append(autograd.is_grad_enabled()))
        th.start()
        th.join()
        assert not autograd.is_grad_enabled()
    assert seen == [True]


# ---- anomaly mode ----


def test_detect_anomaly_names_the_op_that_produced_infinity():
    x = t64([0.0, 1.0], requires_grad=True)
    total(x**0.5).backward()  # without anomaly mode: inf in the gradient
    assert math.isinf(x.grad.numpy()[0])
    x.grad = None
    assert not autograd.is_anomaly_enabled()
    with autograd.detect_anomaly():
        assert autograd.is_anomaly_enabled()
        with pytest.raises(RuntimeError, match="powf.*infinity"):
            total(x**0.5).backward()
    assert not autograd.is_anomaly_enabled()
    with autograd.set_detect_anomaly(True):
        assert autograd.is_anomaly_enabled()
    assert not autograd.is_anomaly_enabled()

    @autograd.detect_anomaly()
    def run():
        total(x**0.5).backward()

    with pytest.raises(RuntimeError, match="anomaly"):
        run()
    assert not autograd.is_anomaly_enabled()


# ---- against PyTorch ----


def test_gradients_match_torch():
    torch = pytest.importorskip("torch")
    a = np.array([[0.5, -1.0], [2.0, 0.25]])
    b = np.array([[1.5, 0.3], [-0.7, 1.1]])

    def f(lib, x, w):
        h = x @ w
        h.retain_grad()
        return h, lib_total(lib, (h * h) / (x + 3.0))

    def lib_total(lib, t):
        return t.sum() if lib is torch else total(t)

    xe, we = t64(a, True), t64(b, True)
    he, ye = f(eingrad, xe, we)
    ye.backward()
    xt = torch.tensor(a, requires_grad=True)
    wt = torch.tensor(b, requires_grad=True)
    ht, yt = f(torch, xt, wt)
    yt.backward()
    np.testing.assert_allclose(ye.item(), yt.item(), rtol=1e-12)
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(we.grad.numpy(), wt.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(he.grad.numpy(), ht.grad.numpy(), rtol=1e-10)
    (ge,) = autograd.grad(f(eingrad, xe, we)[1], xe, create_graph=True)
    (gt,) = torch.autograd.grad(f(torch, xt, wt)[1], xt, create_graph=True)
    (gge,) = autograd.grad(total(ge), we)
    (ggt,) = torch.autograd.grad(gt.sum(), wt)
    np.testing.assert_allclose(gge.numpy(), ggt.numpy(), rtol=1e-10)
