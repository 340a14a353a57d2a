"""Ops as Tensor methods and top-level functions: values against NumPy (float64 and float32),
gradients against finite differences (float64), PyTorch where installed, and bad inputs."""
import math

import numpy as np
import pytest

import eingrad as E

DTYPES = [(E.float64, np.float64, 1e-12), (E.float32, np.float32, 1e-5)]
needs_autograd = pytest.mark.skipif(
    not hasattr(E.Tensor, "backward"), reason="the autograd bindings are not in this build"
)


def rng(seed=0):
    return np.random.default_rng(seed)


def T(a, dtype=E.float64, requires_grad=False):
    return E.tensor(np.asarray(a), dtype=dtype, requires_grad=requires_grad)


def close(t, a, tol=1e-12):
    assert isinstance(t, E.Tensor)
    assert t.shape == np.shape(a), (t.shape, np.shape(a))
    np.testing.assert_allclose(t.numpy(), a, rtol=tol, atol=tol)


def numeric_grad(f, arrays, i, eps=1e-6):
    """d sum(f(...) * w) / d arrays[i] by central differences (w fixed random weights)."""
    a = [np.array(x, dtype=np.float64) for x in arrays]
    out = f(*[T(x) for x in a]).numpy()
    w = rng(99).standard_normal(out.shape)
    g = np.zeros_like(a[i])
    for idx in np.ndindex(a[i].shape):
        old = a[i][idx]
        a[i][idx] = old + eps
        up = (f(*[T(x) for x in a]).numpy() * w).sum()
        a[i][idx] = old - eps
        down = (f(*[T(x) for x in a]).numpy() * w).sum()
        a[i][idx] = old
        g[idx] = (up - down) / (2 * eps)
    return g, w


def check_grad(f, *arrays, tol=1e-6):
    """The autograd gradient of every input of `f` matches finite differences."""
    xs = [T(a, requires_grad=True) for a in arrays]
    out = f(*xs)
    for i in range(len(arrays)):
        g_num, w = numeric_grad(f, arrays, i)
        (g,) = E.autograd.grad((out * T(w)).sum(), [xs[i]], retain_graph=True)
        np.testing.assert_allclose(g.numpy(), g_num, rtol=tol, atol=tol)


# ---- einsum -------------------------------------------------------------------------------


@pytest.mark.parametrize("dt,npdt,tol", DTYPES)
def test_einsum_matches_numpy(dt, npdt, tol):
    a = rng(0).standard_normal((2, 3)).astype(npdt)
    b = rng(1).standard_normal((3, 4)).astype(npdt)
    c = rng(2).standard_normal((5, 3, 3)).astype(npdt)
    close(E.einsum("ij,jk->ik", T(a, dt), T(b, dt)), np.einsum("ij,jk->ik", a, b), tol)
    close(E.einsum("ij,jk", T(a, dt), T(b, dt)), np.einsum("ij,jk", a, b), tol)  # implicit output
    close(E.einsum("bii->b", T(c, dt)), np.einsum("bii->b", c), tol)
    close(E.einsum("...ij->...ji", T(c, dt)), np.einsum("...ij->...ji", c), tol)
    # the operands as one list, as torch allows
    close(E.einsum("ij,jk->ik", [T(a, dt), T(b, dt)]), a @ b, tol)
    assert E.einsum("ij->", T(a, dt)).dtype == dt


def test_einsum_generalised_outputs_with_sizes():
    w = rng(0).standard_normal((2,))
    out = E.einsum("j->ij", T(w), sizes={"i": 3})
    close(out, np.broadcast_to(w, (3, 2)))
    # a repeated output label puts the values on a diagonal
    close(E.einsum("i->ii", T(w)), np.diag(w))


@needs_autograd
def test_einsum_gradient():
    a, b = rng(0).standard_normal((2, 3)), rng(1).standard_normal((3, 4))
    check_grad(lambda x, y: E.einsum("ij,jk->ik", x, y), a, b)
    check_grad(lambda x: E.einsum("j->ij", x, sizes={"i": 3}), a[0])


def test_einsum_bad_inputs_name_the_pattern():
    a = E.ones(2, 3)
    with pytest.raises(ValueError, match="ij,jk->ik"):
        E.einsum("ij,jk->ik", a, E.ones(4, 4))
    with pytest.raises(ValueError, match="einsum"):
        E.einsum("ij->ik", a)  # output label absent from the inputs, no size
    with pytest.raises(ValueError, match="ij-"):
        E.einsum("ij-", a)
    with pytest.raises(TypeError, match="operand 1"):
        E.einsum("ij,jk->ik", a, [[1.0]])
    with pytest.raises(TypeError, match="equation"):
        E.einsum(a, a)
    with pytest.raises(ValueError, match="one label"):
        E.einsum("j->ij", E.ones(2), sizes={"ii": 3})
    with pytest.raises(TypeError, match="operand 1 is"):
        E.einsum("i,i->", E.ones(2), E.ones(2, dtype=E.float64))


# ---- elementwise --------------------------------------------------------------------------

UNARY = {
    "exp": np.exp,
    "log": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "expm1": np.expm1,
    "sqrt": np.sqrt,
    "rsqrt": lambda a: 1 / np.sqrt(a),
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "tanh": np.tanh,
    "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
    "logsigmoid": lambda a: -np.log1p(np.exp(-a)),
    "relu": lambda a: np.maximum(a, 0),
    "silu": lambda a: a / (1 + np.exp(-a)),
    "abs": np.abs,
    "sign": np.sign,
    "neg": np.negative,
    "negative": np.negative,
    "reciprocal": lambda a: 1 / a,
    "square": np.square,
    "softplus": lambda a: np.log1p(np.exp(a)),
    "erf": np.vectorize(math.erf),
    "gelu": lambda a: 0.5 * a * (1 + np.vectorize(math.erf)(a / math.sqrt(2))),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dt,npdt,tol", DTYPES)
def test_unary_method_and_function_match_numpy(name, dt, npdt, tol):
    a = rng(3).uniform(0.2, 2.0, (3, 4)).astype(npdt)
    if name in ("abs", "sign", "neg", "relu", "silu", "sigmoid", "tanh", "erf", "gelu"):
        a = a - 1.1  # both signs
    x = T(a, dt)
    want = UNARY[name](a.astype(np.float64))
    close(getattr(x, name)(), want, max(tol, 1e-6) if dt == E.float32 else 1e-10)
    close(getattr(E, name)(x), want, max(tol, 1e-6) if dt == E.float32 else 1e-10)
    assert getattr(x, name)().dtype == dt


def test_gelu_tanh_and_softplus_beta():
    a = rng(0).standard_normal(5)
    c = math.sqrt(2 / math.pi)
    close(T(a).gelu(approximate="tanh"), 0.5 * a * (1 + np.tanh(c * (a + 0.044715 * a**3))), 1e-10)
    close(T(a).softplus(beta=2.0), np.log1p(np.exp(2 * a)) / 2, 1e-10)
    close(T([30.0]).softplus(), [30.0])
    with pytest.raises(ValueError, match="approximate"):
        T(a).gelu(approximate="fast")


@needs_autograd
@pytest.mark.parametrize(
    "name", ["exp", "log", "sqrt", "tanh", "sigmoid", "logsigmoid", "silu", "gelu", "reciprocal", "square", "tan", "log2", "softplus"]
)
def test_unary_gradients(name):
    a = rng(4).uniform(0.3, 1.5, (2, 3))
    check_grad(lambda x: getattr(x, name)(), a)


@pytest.mark.parametrize("dt,npdt,tol", DTYPES)
def test_binary_functions_broadcast_with_numbers(dt, npdt, tol):
    a = rng(0).standard_normal((3, 4)).astype(npdt)
    b = rng(1).standard_normal((4,)).astype(npdt)
    x, y = T(a, dt), T(b, dt)
    close(x.add(y, alpha=2), a + 2 * b, tol)
    close(E.sub(x, 1.5), a - 1.5, tol)
    close(x.mul(y), a * b, tol)
    close(E.div(x, y), a / b, max(tol, 1e-5))
    close(x.maximum(y), np.maximum(a, b), tol)
    close(E.minimum(x, y), np.minimum(a, b), tol)
    close(abs(x).pow(1.5), np.abs(a) ** 1.5, max(tol, 1e-5))
    close(abs(x).pow(T(np.full(4, 2.0), dt)), np.abs(a) ** 2, max(tol, 1e-5))
    close(x.clamp(min=-0.5, max=0.5), np.clip(a, -0.5, 0.5), tol)
    close(x.clamp(max=0.0), np.minimum(a, 0), tol)
    close(x.clamp(min=y), np.maximum(a, b), tol)  # tensor bound
    close(E.clip(x, -0.1, 0.1), np.clip(a, -0.1, 0.1), tol)
    close(x.eq(x), np.ones_like(a), 0)
    close(x.gt(0), (a > 0).astype(npdt), 0)
    close(E.le(x, y), (a <= b).astype(npdt), 0)
    close(x.ne(y), (a != b).astype(npdt), 0)
    close(x.lt(y), (a < b).astype(npdt), 0)
    close(x.ge(0.0), (a >= 0).astype(npdt), 0)


def test_where_and_masked_fill():
    a = rng(0).standard_normal((3, 4))
    x = T(a)
    close(E.where(x > 0, x, 0.0), np.where(a > 0, a, 0.0))
    close(E.where(x > 0, 1.0, x), np.where(a > 0, 1.0, a))
    close(E.where(np.array(a > 0), x, -x), np.where(a > 0, a, -a))  # a NumPy bool mask
    close(x.where(x < 0, T(np.zeros(4))), np.where(a < 0, a, 0.0))
    close(x.masked_fill(x > 0, -1.0), np.where(a > 0, -1.0, a))
    close(E.masked_fill(x, T(a[0] > 0), 7.0), np.where(a[0] > 0, 7.0, a))  # broadcast mask
    close(x.masked_fill(x > 0, T(2.0)), np.where(a > 0, 2.0, a))
    # a float32 mask works on a float64 tensor
    close(x.masked_fill((x > 0).float(), 0.0), np.where(a > 0, 0.0, a))
    with pytest.raises(ValueError, match="masked_fill"):
        x.masked_fill(E.ones(5) > 0, 0.0)
    with pytest.raises(TypeError, match="where"):
        E.where(x > 0)
    with pytest.raises(TypeError, match="value"):
        x.masked_fill(x > 0, "a")


@needs_autograd
def test_where_masked_fill_clamp_gradients():
    a = rng(5).standard_normal((3, 4))
    b = rng(6).standard_normal((3, 4))
    m = T(a > 0)
    check_grad(lambda x, y: E.where(m, x, y), a, b)
    check_grad(lambda x: x.masked_fill(m, 0.0), a)
    check_grad(lambda x: x.clamp(-0.5, 0.5), a + 0.013)  # away from the kinks
    check_grad(lambda x, y: x.maximum(y), a, b)
    check_grad(lambda x, y: abs(x).pow(y), a, b)


# ---- reductions ---------------------------------------------------------------------------


@pytest.mark.parametrize("dt,npdt,tol", DTYPES)
def test_reductions_match_numpy(dt, npdt, tol):
    a = rng(0).standard_normal((2, 3, 4)).astype(npdt)
    x = T(a, dt)
    t = max(tol, 1e-5)
    close(x.sum(), a.sum(), t)
    close(x.sum(dim=1), a.sum(1), t)
    close(E.sum(x, (0, 2), keepdim=True), a.sum((0, 2), keepdims=True), t)
    close(x.sum(-1), a.sum(-1), t)
    close(x.mean(), a.mean(), t)
    close(x.mean(dim=(1,)), a.mean(1), t)
    close(x.var(), a.var(ddof=1), t)
    close(x.var(dim=1, unbiased=False), a.var(1), t)
    close(x.var(1, correction=0, keepdim=True), a.var(1, keepdims=True), t)
    close(x.std(dim=2), a.std(2, ddof=1), t)
    close(x.norm(), np.linalg.norm(a.ravel()), t)
    close(x.norm(p=1, dim=2), np.abs(a).sum(2), t)
    close(x.norm(p=float("inf"), dim=0), np.abs(a).max(0), t)
    close(x.amax(), a.max(), t)
    close(x.amax(dim=(0, 1)), a.max((0, 1)), t)
    close(E.amin(x, -1, keepdim=True), a.min(-1, keepdims=True), t)
    close(x.max(), a.max(), t)
    close(E.min(x), a.min(), t)
    mx = x.max(dim=1)
    close(mx.values, a.max(1), t)
    close(mx.indices, a.argmax(1).astype(npdt), 0)
    values, indices = x.min(dim=-1, keepdim=True)
    close(values, a.min(-1, keepdims=True), t)
    close(indices, a.argmin(-1)[..., None].astype(npdt), 0)
    close(x.max(T(np.zeros(4), dt)), np.maximum(a, 0), t)  # elementwise form
    close(x.argmax(), np.array(a.argmax(), dtype=npdt), 0)
    close(E.argmin(x, dim=2), a.argmin(2).astype(npdt), 0)
    close(x.argmax(dim=0, keepdim=True), a.argmax(0)[None].astype(npdt), 0)
    lse = np.log(np.exp(a).sum(1))
    close(x.logsumexp(1), lse, t)
    close(E.logsumexp(x, dim=(1, 2)), np.log(np.exp(a).sum((1, 2))), t)
    close(x.cumsum(1), a.cumsum(1), t)
    close(E.cumsum(x, dim=-1), a.cumsum(-1), t)
    sm = np.exp(a) / np.exp(a).sum(-1, keepdims=True)
    close(x.softmax(-1), sm, t)
    close(E.softmax(x, dim=-1), sm, t)
    close(x.log_softmax(dim=1), a - np.log(np.exp(a).sum(1, keepdims=True)), t)
    assert x.sum(dtype=E.float64).dtype == E.float64


def test_all_any_and_closeness():
    x = T([[1.0, 0.0], [2.0, 3.0]])
    assert not bool(x.all()) and bool(x.any())
    close(x.all(dim=1), [0.0, 1.0])
    close(E.any(x, dim=0), [1.0, 1.0])
    assert bool(E.zeros(0).all()) and not bool(E.zeros(0).any())
    inf = float("inf")
    a = T([[0.0, -inf], [1.0, inf]])
    assert E.allclose(a, T([[1e-9, -inf], [1.0, inf]]))
    assert not E.allclose(a, T([[0.0, inf], [1.0, inf]]))
    assert not a.allclose(T([[0.1, -inf], [1.0, inf]]))
    assert a.allclose(T([[0.1, -inf], [1.0, inf]]), atol=0.2)
    nan = float("nan")
    assert not T([nan]).allclose(T([nan]))
    assert T([nan]).allclose(T([nan]), equal_nan=True)
    close(E.isclose(a, T([[0.0, -inf], [1.5, -inf]])), [[1.0, 1.0], [0.0, 0.0]])
    assert E.ones(2, 2).allclose(E.ones(2))  # broadcast
    assert E.equal(E.ones(2), E.ones(2)) and not E.equal(E.ones(2), E.ones(3))
    # a tensor with -inf above the diagonal, as seed 002 compares
    m = E.ones(3, 3).tril().log()
    assert E.allclose(m, m.clone())


@needs_autograd
def test_reduction_gradients():
    a = rng(7).standard_normal((2, 3, 4))
    check_grad(lambda x: x.sum(dim=(0, 2)), a)
    check_grad(lambda x: x.mean(1, keepdim=True), a)
    check_grad(lambda x: x.var(dim=2), a)
    check_grad(lambda x: x.std(), a)
    check_grad(lambda x: x.amax(dim=1), a)
    check_grad(lambda x: x.max(dim=2).values, a)
    check_grad(lambda x: x.min(), a)
    check_grad(lambda x: x.logsumexp(-1), a)
    check_grad(lambda x: x.cumsum(1), a)
    check_grad(lambda x: x.softmax(-1), a)
    check_grad(lambda x: x.log_softmax(0), a)
    check_grad(lambda x: x.norm(dim=1), a)


def test_reduction_bad_inputs():
    x = E.ones(2, 3)
    with pytest.raises(ValueError, match="dim 5"):
        x.sum(dim=5)
    with pytest.raises(ValueError, match="dim"):
        x.softmax(2)
    with pytest.raises(ValueError, match="twice"):
        x.sum(dim=(1, 1))
    with pytest.raises(TypeError, match="sum"):
        x.sum(dim="a")
    with pytest.raises(ValueError, match="empty"):
        E.zeros(0).max()
    with pytest.raises(ValueError, match="correction"):
        x.var(unbiased=True, correction=1)
    with pytest.raises(ValueError, match="norm"):
        x.norm(p=-1)


# ---- shape ops ----------------------------------------------------------------------------


@pytest.mark.parametrize("dt,npdt,tol", DTYPES)
def test_shape_ops_match_numpy(dt, npdt, tol):
    a = rng(0).standard_normal((2, 3, 4)).astype(npdt)
    x = T(a, dt)
    close(x.reshape(6, -1), a.reshape(6, -1), 0)
    close(x.reshape((4, 6)), a.reshape(4, 6), 0)
    close(E.reshape(x, (-1,)), a.ravel(), 0)
    close(x.view(2, 12), a.reshape(2, 12), 0)
    close(x.view(-1), a.ravel(), 0)
    close(x.view_as(E.zeros(4, 6)), a.reshape(4, 6), 0)
    close(x.reshape_as(E.zeros(24)), a.ravel(), 0)
    close(x.permute(2, 0, 1), a.transpose(2, 0, 1), 0)
    close(E.permute(x, (1, 0, 2)), a.transpose(1, 0, 2), 0)
    close(x.permute(-1, 0, 1), a.transpose(2, 0, 1), 0)
    close(x.transpose(0, -1), a.swapaxes(0, 2), 0)
    close(E.transpose(x, 1, 2), a.swapaxes(1, 2), 0)
    close(x.swapaxes(0, 1), a.swapaxes(0, 1), 0)
    close(x.movedim(0, -1), np.moveaxis(a, 0, -1), 0)
    close(x[0].t(), a[0].T, 0)
    close(x.T, a.T, 0)
    close(x.mT, a.swapaxes(-1, -2), 0)
    close(x.unsqueeze(1), a[:, None], 0)
    close(E.unsqueeze(x, -1), a[..., None], 0)
    y = T(a[:, :1, None], dt)
    close(y.squeeze(), a[:, 0], 0)
    close(y.squeeze(1), a[:, 0, None], 0)
    close(y.squeeze((1, 2)), a[:, 0], 0)
    close(y.squeeze(0), a[:, :1, None], 0)  # a dim of size 2 stays
    close(y.expand(2, 3, 5, 4), np.broadcast_to(a[:, :1, None], (2, 3, 5, 4)), 0)
    close(y.expand(7, -1, -1, 2, -1), np.broadcast_to(a[:, :1, None], (7, 2, 1, 2, 4)), 0)
    close(y.expand_as(E.zeros(2, 3, 2, 4)), np.broadcast_to(a[:, :1, None], (2, 3, 2, 4)), 0)
    close(x.broadcast_to((3, 2, 3, 4)), np.broadcast_to(a, (3, 2, 3, 4)), 0)
    close(x.repeat(1, 2, 1), np.tile(a, (1, 2, 1)), 0)
    close(x.repeat(2, 1, 1, 3), np.tile(a, (2, 1, 1, 3)), 0)
    close(x.flatten(), a.ravel(), 0)
    close(x.flatten(1), a.reshape(2, 12), 0)
    close(E.flatten(x, 0, 1), a.reshape(6, 4), 0)
    close(x.unflatten(2, (2, 2)), a.reshape(2, 3, 2, 2), 0)
    close(x.unflatten(1, (-1, 1)), a.reshape(2, 3, 1, 4), 0)
    close(x.flip(0), a[::-1], 0)
    close(x.flip((1, 2)), a[:, ::-1, ::-1], 0)
    close(x.roll(1, 2), np.roll(a, 1, 2), 0)
    close(x.roll((1, -1), (0, 1)), np.roll(a, (1, -1), (0, 1)), 0)
    close(x.roll(5), np.roll(a, 5), 0)
    close(x.narrow(2, 1, 2), a[:, :, 1:3], 0)
    close(x.narrow(-1, -2, 2), a[:, :, 2:], 0)
    close(x.contiguous(), a, 0)
    assert x.transpose(0, 1).contiguous().is_contiguous()
    close(x.clone(), a, 0)
    close(x.diagonal(dim1=1, dim2=2), np.diagonal(a, axis1=1, axis2=2), 0)
    close(x.diagonal(1, 1, 2), np.diagonal(a, 1, axis1=1, axis2=2), 0)
    close(E.diagonal(x, -1, 1, 2), np.diagonal(a, -1, axis1=1, axis2=2), 0)
    close(x.tril(), np.tril(a), 0)
    close(E.tril(x, diagonal=-1), np.tril(a, -1), 0)
    close(x.triu(1), np.triu(a, 1), 0)
    close(x.unfold(2, 2, 1), np.lib.stride_tricks.sliding_window_view(a, 2, axis=2), 0)
    assert x.type_as(E.zeros(1, dtype=E.float32)).dtype == E.float32


def test_split_chunk_unbind():
    a = np.arange(10.0).reshape(5, 2)
    x = T(a)
    parts = x.split(2)
    assert isinstance(parts, tuple) and [p.shape for p in parts] == [(2, 2), (2, 2), (1, 2)]
    close(parts[2], a[4:], 0)
    parts = E.split(x, [1, 4], dim=0)
    close(parts[1], a[1:], 0)
    parts = x.split(1, dim=1)
    close(parts[0], a[:, :1], 0)
    assert [p.shape for p in x.chunk(3)] == [(2, 2), (2, 2), (1, 2)]
    assert [p.shape for p in E.chunk(x, 2, dim=1)] == [(5, 1), (5, 1)]
    rows = x.unbind()
    assert len(rows) == 5
    close(rows[3], a[3], 0)
    close(E.unbind(x, 1)[1], a[:, 1], 0)
    with pytest.raises(ValueError, match="sum to"):
        x.split([1, 1])
    with pytest.raises(ValueError, match="split_size"):
        x.split(0)
    with pytest.raises(ValueError, match="chunks"):
        x.chunk(0)


@pytest.mark.parametrize("dt,npdt,tol", DTYPES)
def test_cat_stack_pad(dt, npdt, tol):
    a = rng(0).standard_normal((2, 3)).astype(npdt)
    b = rng(1).standard_normal((2, 1)).astype(npdt)
    close(E.cat([T(a, dt), T(b, dt)], dim=1), np.concatenate([a, b], 1), 0)
    close(E.cat((T(a, dt), T(a, dt))), np.concatenate([a, a]), 0)
    close(E.concat([T(a, dt), T(a, dt)], dim=-1), np.concatenate([a, a], -1), 0)
    close(E.concatenate([T(a, dt)]), a, 0)
    close(E.stack([T(a, dt), T(a, dt)]), np.stack([a, a]), 0)
    close(E.stack([T(a, dt), T(a, dt)], dim=-1), np.stack([a, a], -1), 0)
    x = T(a, dt)
    close(E.pad(x, (1, 2)), np.pad(a, ((0, 0), (1, 2))), 0)
    close(E.pad(x, (1, 0, 0, 2), value=-1.0), np.pad(a, ((0, 2), (1, 0)), constant_values=-1), 0)
    close(E.pad(x, [2, 2], mode="reflect"), np.pad(a, ((0, 0), (2, 2)), mode="reflect"), 0)
    close(E.pad(x, (2, 3), mode="replicate"), np.pad(a, ((0, 0), (2, 3)), mode="edge"), 0)
    close(E.pad(x, (2, 1), mode="circular"), np.pad(a, ((0, 0), (2, 1)), mode="wrap"), 0)
    close(E.pad(x, (-1, 1)), np.pad(a[:, 1:], ((0, 0), (0, 1))), 0)  # negative crops


def test_cat_stack_pad_bad_inputs():
    with pytest.raises(ValueError, match="cat"):
        E.cat([E.ones(2, 3), E.ones(3, 3)], dim=1)
    with pytest.raises(ValueError, match="non-empty"):
        E.cat([])
    with pytest.raises(TypeError, match=r"tensors\[1\]"):
        E.stack([E.ones(2), [1.0, 2.0]])
    with pytest.raises(TypeError, match="sequence"):
        E.cat(E.ones(2))
    with pytest.raises(ValueError, match="stack"):
        E.stack([E.ones(2), E.ones(3)])
    with pytest.raises(ValueError, match="even"):
        E.pad(E.ones(2), (1,))
    with pytest.raises(ValueError, match="mode"):
        E.pad(E.ones(2), (1, 1), mode="wrap")
    with pytest.raises(ValueError, match="reflect"):
        E.pad(E.ones(2), (2, 2), mode="reflect")


@needs_autograd
def test_shape_and_join_gradients():
    a = rng(8).standard_normal((2, 3, 4))
    b = rng(9).standard_normal((2, 3, 2))
    check_grad(lambda x: x.permute(2, 0, 1).reshape(4, 6), a)
    check_grad(lambda x: x.transpose(0, 2).flip(1).narrow(0, 1, 2), a)
    check_grad(lambda x: x[:, :1].expand(2, 3, 4) * x, a)
    check_grad(lambda x: x.repeat(2, 1, 1), a)
    check_grad(lambda x: x.diagonal(0, 1, 2), a)
    check_grad(lambda x: x.tril(), a)
    check_grad(lambda x, y: E.cat([x, y], dim=-1), a, b)
    check_grad(lambda x, y: E.stack([x[..., :2], y], dim=1), a, b)
    check_grad(lambda x: E.pad(x, (1, 2, 0, 1)), a)
    check_grad(lambda x: E.pad(x, (2, 1), mode="reflect"), a)
    check_grad(lambda x: x.split(2, dim=2)[1], a)
    check_grad(lambda x: x.roll(1, 1), a)
    check_grad(lambda x: x.index_select(1, [2, 0, 2]), a)
    check_grad(lambda x: x.gather(2, [[[0, 3]] * 3] * 2), a)


def test_shape_bad_inputs():
    x = E.ones(2, 3)
    with pytest.raises(ValueError, match="reshape"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match="−1"):
        x.view(-1, -1)
    with pytest.raises(ValueError, match="permute"):
        x.permute(0)
    with pytest.raises(ValueError, match="dim 2"):
        x.transpose(0, 2)
    with pytest.raises(ValueError, match="dim 3"):
        x.unsqueeze(3)
    with pytest.raises(ValueError, match="expand"):
        x.expand(3, 3)
    with pytest.raises(ValueError, match="expand"):
        x.expand(-1, 2, 3)
    with pytest.raises(ValueError, match="repeat"):
        x.repeat(2)
    with pytest.raises(ValueError, match="flatten"):
        E.zeros(2, 3, 4).flatten(2, 1)
    with pytest.raises(IndexError, match="narrow"):
        x.narrow(1, 5, 1)
    with pytest.raises(ValueError, match="narrow"):
        x.narrow(1, 2, 2)
    with pytest.raises(TypeError, match="reshape"):
        x.reshape("a")
    with pytest.raises(ValueError, match="diagonal"):
        x.diagonal(0, 1, 1)
    with pytest.raises(ValueError, match="unflatten"):
        x.unflatten(1, (2, 2))


# ---- gather / scatter / index ops ---------------------------------------------------------


def test_index_select_gather_scatter_index_add():
    a = np.arange(12.0).reshape(3, 4)
    x = T(a)
    close(x.index_select(1, [3, 0, 3]), a[:, [3, 0, 3]], 0)
    close(E.index_select(x, 0, np.array([2, 1])), a[[2, 1]], 0)
    close(x.index_select(0, T([2.0, 0.0])), a[[2, 0]], 0)
    idx = np.array([[0, 3], [1, 1], [2, 0]])
    close(x.gather(1, idx), np.take_along_axis(a, idx, 1), 0)
    close(E.zeros(3).scatter_add(0, [2, 0, 2], T([1.0, 2.0, 4.0])), [2.0, 0.0, 5.0], 0)
    close(E.zeros(3, dtype=E.float64).index_add(0, [1, 1, 0], T([1.0, 2.0, 4.0]), alpha=2), [8.0, 6.0, 0.0], 0)
    close(E._eingrad._one_hot([2, 0], 3), np.eye(3)[[2, 0]].astype(np.float32), 0)
    with pytest.raises(IndexError, match="index 4 is out of range for dim 1 of size 4"):
        x.index_select(1, [4])
    with pytest.raises(IndexError, match="index -1"):
        x.gather(1, [[-1]] * 3)
    with pytest.raises(TypeError, match="ints"):
        x.index_select(0, ["a"])
    with pytest.raises(ValueError, match="whole"):
        x.index_select(0, T([0.5]))


# ---- conv1d -------------------------------------------------------------------------------


def np_conv1d(x, w, b=None, stride=1, pad=(0, 0), dilation=1, groups=1):
    x = np.pad(x, ((0, 0), (0, 0), pad))
    n, cin, length = x.shape
    cout, cg, k = w.shape
    lout = (length - dilation * (k - 1) - 1) // stride + 1
    out = np.zeros((n, cout, lout))
    og = cout // groups
    for o in range(cout):
        g = o // og
        for i in range(lout):
            for c in range(cg):
                for m in range(k):
                    out[:, o, i] += w[o, c, m] * x[:, g * cg + c, i * stride + m * dilation]
    if b is not None:
        out += b[None, :, None]
    return out


@pytest.mark.parametrize("dt,npdt,tol", DTYPES)
def test_conv1d_matches_numpy(dt, npdt, tol):
    x = rng(0).standard_normal((2, 4, 9)).astype(npdt)
    w = rng(1).standard_normal((6, 2, 3)).astype(npdt)
    b = rng(2).standard_normal(6).astype(npdt)
    t = max(tol, 1e-5)
    X, W, B = T(x, dt), T(w, dt), T(b, dt)
    close(E.conv1d(X, W, B, groups=2), np_conv1d(x, w, b, groups=2), t)
    close(E.conv1d(X, W, stride=2, padding=1, groups=2), np_conv1d(x, w, stride=2, pad=(1, 1), groups=2), t)
    close(E.conv1d(X, W, padding="same", dilation=2, groups=2), np_conv1d(x, w, pad=(2, 2), dilation=2, groups=2), t)
    w2 = T(w[:, :, :2], dt)
    close(E.conv1d(X, w2, padding="same", groups=2), np_conv1d(x, w[:, :, :2], pad=(0, 1), groups=2), t)
    close(E.conv1d(X, W, padding="valid", groups=2), np_conv1d(x, w, groups=2), t)
    close(E.conv1d(X, W, stride=(1,), padding=(1,), groups=2), np_conv1d(x, w, pad=(1, 1), groups=2), t)


@needs_autograd
def test_conv1d_gradient():
    x = rng(0).standard_normal((1, 2, 6))
    w = rng(1).standard_normal((3, 2, 2))
    b = rng(2).standard_normal(3)
    check_grad(lambda x, w, b: E.conv1d(x, w, b, padding=1, dilation=2), x, w, b)


def test_conv1d_bad_inputs():
    x, w = E.ones(1, 2, 5), E.ones(3, 2, 2)
    with pytest.raises(ValueError, match="same"):
        E.conv1d(x, w, padding="same", stride=2)
    with pytest.raises(ValueError, match="padding"):
        E.conv1d(x, w, padding="full")
    with pytest.raises(ValueError, match="stride"):
        E.conv1d(x, w, stride=0)
    with pytest.raises(ValueError, match="groups"):
        E.conv1d(x, w, groups=0)
    with pytest.raises(ValueError, match="conv1d"):
        E.conv1d(E.ones(2, 5), w)
    with pytest.raises(ValueError, match="conv1d"):
        E.conv1d(E.ones(1, 3, 5), w)
    with pytest.raises(TypeError):
        E.conv1d(x, [[1.0]])


# ---- new tensors, type errors -------------------------------------------------------------


def test_new_tensors_follow_the_dtype():
    x = E.ones(2, dtype=E.float64)
    assert x.new_zeros(2, 3).shape == (2, 3) and x.new_zeros((2,)).dtype == E.float64
    assert x.new_ones(3).tolist() == [1.0] * 3
    assert x.new_full((2,), 7.0).tolist() == [7.0, 7.0]
    assert x.new_empty(4).shape == (4,)
    t = x.new_tensor([1, 2])
    assert t.dtype == E.float64 and t.tolist() == [1.0, 2.0] and not t.requires_grad
    assert x.new_tensor([1], dtype=E.float32).dtype == E.float32
    assert x.new().shape == (0,) and x.new(2, 3).shape == (2, 3)
    assert x.new([3.0]).tolist() == [3.0]
    # seed 001's idiom
    assert x.new().resize_(x.size()).fill_(1).tolist() == [1.0, 1.0]


def test_wrong_argument_types_are_type_errors():
    x = E.ones(2)
    with pytest.raises(TypeError, match="maximum"):
        x.maximum("a")
    with pytest.raises(TypeError, match="exponent"):
        x.pow(None)
    with pytest.raises(TypeError):
        E.exp([1.0])
    with pytest.raises(TypeError):
        x.softmax("a")
    with pytest.raises(ValueError, match="clamp"):
        x.clamp()


# ---- PyTorch ------------------------------------------------------------------------------


def test_ops_agree_with_torch():
    torch = pytest.importorskip("torch")
    a = rng(0).standard_normal((2, 3, 4))
    x, tx = T(a), torch.tensor(a)
    pairs = [
        (x.var(1), tx.var(1)),
        (x.logsumexp((0, 2)), tx.logsumexp((0, 2))),
        (x.softmax(0), tx.softmax(0)),
        (x.diagonal(1, 1, 2), tx.diagonal(1, 1, 2)),
        (x.tril(-1), tx.tril(-1)),
        (x.repeat(2, 1, 1, 1), tx.repeat(2, 1, 1, 1)),
        (x.gelu(approximate="tanh"), torch.nn.functional.gelu(tx, approximate="tanh")),
        (x.softplus(beta=2), torch.nn.functional.softplus(tx, beta=2)),
        (E.pad(x, (1, 2, 2, 1), mode="reflect"), torch.nn.functional.pad(tx, (1, 2, 2, 1), mode="reflect")),
        (E.pad(x, (1, 2), mode="circular"), torch.nn.functional.pad(tx, (1, 2), mode="circular")),
        (x.norm(p=3, dim=1), tx.norm(p=3, dim=1)),
        (x.roll((1, 2), (0, 2)), tx.roll((1, 2), (0, 2))),
    ]
    for mine, theirs in pairs:
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-10, atol=1e-12)
    w = rng(1).standard_normal((6, 1, 2))
    mine = E.conv1d(T(a), T(w), padding="same", groups=3, dilation=3)
    theirs = torch.nn.functional.conv1d(tx, torch.tensor(w), padding="same", groups=3, dilation=3)
    np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-10, atol=1e-12)
    inf = float("inf")
    m = [[0.0, -inf], [inf, 1.0]]
    assert E.allclose(T(m), T(m)) == torch.allclose(torch.tensor(m), torch.tensor(m))


# ---- fuzz ---------------------------------------------------------------------------------


def test_random_arguments_raise_exceptions_never_crash():
    """Every op and indexing form, called with random arguments, returns or raises an
    `Exception` (never a Rust panic, which is not one, nor an abort)."""
    import random

    r = random.Random(1234)
    names = [
        n for n in dir(E.Tensor)
        if not n.startswith("__") and callable(getattr(E.Tensor, n, None))
        and n not in ("backward", "register_hook", "retain_grad", "numpy", "tolist", "item")
    ]
    funcs = ["einsum", "cat", "stack", "where", "pad", "conv1d", "_one_hot"]
    huge = E.zeros(1).expand(100000, 100000)

    def arg():
        return r.choice([
            r.randint(-5, 5), 0.5, float("nan"), float("inf"), None, (1, -1), [0, 2], [],
            E.randn(2, 3), E.tensor(1.0), E.ones(2, 3) > 0, slice(-2, None, -1), Ellipsis,
            np.array([True, False]), 10**12, "ij,jk->ik", {"i": 2}, huge, [E.ones(2)],
        ])

    for _ in range(3000):
        x = r.choice([E.randn(2, 3, 4), E.randn(3), E.tensor(1.0), E.zeros(0, 2), E.randn(2, 2, dtype=E.float64)])
        args = [arg() for _ in range(r.randint(0, 4))]
        try:
            c = r.random()
            if c < 0.6:
                getattr(x, r.choice(names))(*args)
            elif c < 0.8:
                getattr(E._eingrad, r.choice(funcs))(*args)
            else:
                x[tuple(args[:-1]) if len(args) > 1 else (args[0] if args else 0)] = args[-1] if args else 1.0
        except Exception:
            pass
