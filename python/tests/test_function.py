"""eingrad.autograd.Function: Python forward/backward/jvp run as a Rust CustomFunction."""
import numpy as np
import pytest

import eingrad
from eingrad import autograd
from eingrad.autograd import Function

from support import F64, t64, total  # noqa: E402,F401


class ScaledCube(Function):
    """k·x³ with a non-tensor argument k and a ctx attribute."""

    @staticmethod
    def forward(ctx, x, k):
        assert not autograd.is_grad_enabled()  # forward runs under no-grad
        ctx.save_for_backward(x)
        ctx.k = k
        ctx.seen_needs = ctx.needs_input_grad
        return x * x * x * k

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3.0 * x * x * ctx.k, None


def test_forward_backward_ctx_and_non_tensor_arguments():
    x = t64([1.0, 2.0], requires_grad=True)
    y = ScaledCube.apply(x, 2.0)
    assert y.requires_grad and y.grad_fn.name() == "ScaledCube"
    np.testing.assert_allclose(y.numpy(), [2.0, 16.0])
    total(y).backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 24.0])
    # Without anything requiring grad nothing is recorded.
    y = ScaledCube.apply(t64([1.0]), 2.0)
    assert not y.requires_grad
    with autograd.no_grad():
        assert not ScaledCube.apply(x, 2.0).requires_grad


def test_needs_input_grad_is_per_argument():
    seen = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, b, c):
            seen.append(ctx.needs_input_grad)
            return a * b

        @staticmethod
        def backward(ctx, g):
            seen.append(ctx.needs_input_grad)
            return g, g, None

    a, b = t64([1.0], requires_grad=True), t64([2.0])
    total(Probe.apply(a, b, "label")).backward()
    assert seen == [(True, False, False), (True, False, False)]
    np.testing.assert_allclose(a.grad.numpy(), [1.0])


def test_double_backward_through_a_python_backward():
    # The backward is written in eingrad ops, so with create_graph it is differentiable.
    x = t64([2.0], requires_grad=True)
    y = ScaledCube.apply(x, 1.0)
    (g,) = autograd.grad(y, x, create_graph=True)
    assert g.item() == 12.0 and g.requires_grad
    (gg,) = autograd.grad(g, x)
    assert gg.item() == 12.0  # d(3x²)/dx at 2


class Exp2(Function):
    """2**x saving its output (the saved output carries this node under create_graph)."""

    @staticmethod
    def forward(ctx, x):
        y = 2.0**x
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y * np.log(2.0)


def test_saved_output_second_derivative():
    a = np.array([0.5, 1.5])
    x = t64(a, requires_grad=True)
    y = Exp2.apply(x)
    (g,) = autograd.grad(total(y), x, create_graph=True)
    np.testing.assert_allclose(g.numpy(), 2.0**a * np.log(2.0), rtol=1e-12)
    (gg,) = autograd.grad(total(g), x)
    np.testing.assert_allclose(gg.numpy(), 2.0**a * np.log(2.0) ** 2, rtol=1e-12)


class CubeSetup(Function):
    """PyTorch 2 style: forward without ctx, plus setup_context."""

    @staticmethod
    def forward(x):
        return x * x * x

    @staticmethod
    def setup_context(ctx, inputs, output):
        (x,) = inputs
        ctx.save_for_backward(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3.0 * g * x * x


def test_module_paths_like_torch():
    from eingrad.autograd.function import Function as F2, FunctionCtx, once_differentiable

    assert F2 is Function and FunctionCtx is autograd.FunctionCtx
    assert once_differentiable(total) is total


def test_setup_context_style():
    x = t64([1.0, 3.0], requires_grad=True)
    total(CubeSetup.apply(x)).backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 27.0])


class SplitSign(Function):
    """Two outputs, the second (a mask) non-differentiable."""

    @staticmethod
    def forward(ctx, x):
        mask = x > 0.0
        ctx.mark_non_differentiable(mask)
        ctx.save_for_backward(mask)
        return x * mask, mask

    @staticmethod
    def backward(ctx, g, g_mask):
        (mask,) = ctx.saved_tensors
        assert float(total(g_mask * g_mask)) == 0.0  # zeros for the non-differentiable output
        return g * mask


def test_multiple_outputs_and_mark_non_differentiable():
    x = t64([-1.0, 2.0, 3.0], requires_grad=True)
    relu, mask = SplitSign.apply(x)
    assert relu.requires_grad and not mask.requires_grad
    np.testing.assert_allclose(mask.numpy(), [0.0, 1.0, 1.0])
    total(relu * relu).backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 4.0, 6.0])


class Synthetic(Function):
    """Identity forward, a fixed synthetic gradient backward (seed 001's DNI pattern)."""

    @staticmethod
    def forward(ctx, h, synthetic):
        ctx.save_for_backward(synthetic)
        return h * 1.0

    @staticmethod
    def backward(ctx, g):
        (synthetic,) = ctx.saved_tensors
        return synthetic, None


def test_synthetic_gradient_and_several_roots():
    x = t64([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    out = Synthetic.apply(h, t64([0.5, -1.0]))
    other = x * 2.0
    autograd.backward([out, other], [t64([9.0, 9.0]), t64([1.0, 1.0])])
    # synthetic gradient (ignores the 9s) through ×3, plus 2 from the second root
    np.testing.assert_allclose(x.grad.numpy(), [3.5, -1.0])


def test_hand_written_backward_agrees_with_autograd_seed_002():
    a = np.array([0.3, -0.8, 1.7])
    x1 = t64(a, requires_grad=True)
    x2 = t64(a, requires_grad=True)
    total(ScaledCube.apply(x1, 1.5)).backward()
    total(x2 * x2 * x2 * 1.5).backward()
    np.testing.assert_allclose(x1.grad.numpy(), x2.grad.numpy(), rtol=1e-14)
    r = eingrad.func.verify_backward(
        lambda x: ScaledCube.apply(x, 1.5), lambda x: x * x * x * 1.5, (t64(a),)
    )
    assert r.passed, str(r)


# ---- forward mode ----


class ScaleWithJvp(Function):
    @staticmethod
    def forward(ctx, x, c):
        ctx.c = c
        return x * c

    @staticmethod
    def backward(ctx, g):
        return g * ctx.c, None

    @staticmethod
    def jvp(ctx, x_t, c_t):
        assert c_t is None
        ctx.jvp_ran = True
        return x_t * ctx.c


def test_jvp_rule_and_transposed_backward():
    x = t64([1.0, 2.0])
    v = t64([1.0, -1.0])
    _, t = eingrad.func.jvp(lambda x: ScaleWithJvp.apply(x, 3.0), (x,), (v,))
    np.testing.assert_allclose(t.numpy(), [3.0, -3.0])
    # Without a jvp, forward mode transposes the backward.
    _, t = eingrad.func.jvp(lambda x: ScaledCube.apply(x, 1.0), (x,), (v,))
    np.testing.assert_allclose(t.numpy(), [3.0, -12.0])


# ---- errors ----


class TwoGrads(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2.0

    @staticmethod
    def backward(ctx, g):
        return g, g


class WrongShape(Function):
    @staticmethod
    def forward(ctx, x, y):
        return x * 2.0

    @staticmethod
    def backward(ctx, g):
        return None, t64([1.0, 2.0, 3.0])


class BackwardRaises(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2.0

    @staticmethod
    def backward(ctx, g):
        raise LookupError("no gradient today")


class GradForNonTensor(Function):
    @staticmethod
    def forward(ctx, x, k):
        return x * k

    @staticmethod
    def backward(ctx, g):
        return g, g


class ForwardReturnsNumber(Function):
    @staticmethod
    def forward(ctx, x):
        return 3.0

    @staticmethod
    def backward(ctx, g):
        return g


def test_wrong_gradient_count_names_the_function():
    x = t64([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="`TwoGrads`: backward returned 2 gradients but the function has 1 inputs"):
        autograd.grad(TwoGrads.apply(x), x)


def test_wrong_gradient_shape_names_function_input_and_shapes():
    x = t64([1.0], requires_grad=True)
    y = t64([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"`WrongShape`.*shape \[3\].*input 1, which has shape \[2\]"):
        total(WrongShape.apply(x, y) * y).backward()


def test_wrong_gradient_dtype_names_the_dtypes():
    class WrongDtype(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, g):
            return eingrad.ones(2)  # float32 for a float64 input

    x = t64([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"`WrongDtype`.*\(F32\) for input 0, which has shape \[2\] \(F64\)"):
        total(WrongDtype.apply(x)).backward()


def test_exceptions_from_backward_and_forward_propagate():
    x = t64([1.0], requires_grad=True)
    with pytest.raises(LookupError, match="no gradient today"):
        BackwardRaises.apply(x).backward()

    class ForwardRaises(Function):
        @staticmethod
        def forward(ctx, x):
            raise ArithmeticError("bad forward")

    with pytest.raises(ArithmeticError, match="bad forward"):
        ForwardRaises.apply(x)
    with pytest.raises(TypeError, match="forward output 0 must be a Tensor, got 3.0"):
        ForwardReturnsNumber.apply(x)
    with pytest.raises(RuntimeError, match="different than None at position 1"):
        GradForNonTensor.apply(x, 2.0).backward()
    with pytest.raises(TypeError, match="positional"):
        ScaledCube.apply(x, k=2.0)
    with pytest.raises(TypeError, match="save_for_backward: argument 0 must be a Tensor"):
        autograd.FunctionCtx().save_for_backward(1.0)


def test_function_matches_torch():
    torch = pytest.importorskip("torch")

    class TCube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            ctx.save_for_backward(x)
            ctx.k = k
            return x * x * x * k

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3.0 * x * x * ctx.k, None

    a = np.array([0.4, -1.3, 2.2])
    xt = torch.tensor(a, requires_grad=True)
    (gt,) = torch.autograd.grad(TCube.apply(xt, 0.7).sum(), xt, create_graph=True)
    (ggt,) = torch.autograd.grad(gt.sum(), xt)
    xe = t64(a, requires_grad=True)
    (ge,) = autograd.grad(total(ScaledCube.apply(xe, 0.7)), xe, create_graph=True)
    (gge,) = autograd.grad(total(ge), xe)
    np.testing.assert_allclose(ge.detach().numpy(), gt.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(gge.numpy(), ggt.numpy(), rtol=1e-13)


def test_functions_and_hooks_from_several_threads():
    # backward releases the GIL; each hook / Python backward takes it back. Several threads
    # running passes at once must neither deadlock nor mix their gradients.
    import threading

    errors = []

    def work(k):
        try:
            for _ in range(50):
                y = t64([float(k), 1.0], requires_grad=True)
                y.register_hook(lambda g: g * 1.0)
                (g,) = autograd.grad(total(ScaledCube.apply(y, 1.0)), y)
                assert g.tolist() == [3.0 * k * k, 3.0], g
        except Exception as e:  # noqa: BLE001  (reported below)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not any(th.is_alive() for th in threads)
    assert errors == []
