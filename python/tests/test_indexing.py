"""Indexing: reads (against NumPy), writes by PyTorch's in-place rules, gradients through
both, iteration, in-place methods and bad indices."""
import numpy as np
import pytest

import eingrad as E

needs_autograd = pytest.mark.skipif(
    not hasattr(E.Tensor, "backward"), reason="the autograd bindings are not in this build"
)


def T(a, dtype=E.float64, requires_grad=False):
    return E.tensor(np.asarray(a), dtype=dtype, requires_grad=requires_grad)


def same(t, a):
    assert isinstance(t, E.Tensor)
    assert t.shape == np.shape(a), (t.shape, np.shape(a))
    np.testing.assert_array_equal(t.numpy(), a)


A = np.arange(60.0).reshape(3, 4, 5)

READS = [
    (1,),
    (-1,),
    (slice(None), 2),
    (slice(None), slice(None), slice(None, 1)),  # seed 004's x[:, :, :1]
    (0, 0, 4),  # seed 002's dmat[0, 0, 4]
    (slice(1, None), slice(None, None, 2)),
    (slice(None, None, -1),),
    (slice(None), slice(3, 0, -2)),
    (slice(None), slice(None, None, -3), 1),
    (slice(-2, None), -1, slice(-3, -1)),
    (None, 1, None),
    (Ellipsis, 0),
    (0, Ellipsis, None),
    (Ellipsis,),
    (slice(None), [3, 0, 3]),
    ([2, 0],),
    (slice(None), np.array([[1, 2], [0, 0]])),
    (Ellipsis, [4, -1]),
    (slice(10, 20),),  # empty, as in NumPy
]


@pytest.mark.parametrize("key", READS, ids=[repr(k) for k in READS])
@pytest.mark.parametrize("dt", [E.float64, E.float32])
def test_reads_match_numpy(key, dt):
    x = T(A, dt)
    k = key if len(key) != 1 else key[0]
    same(x[k], A[k].astype(x.numpy().dtype))


def test_mask_reads_select_like_torch():
    x = T(A)
    same(x[x > 40], A[A > 40])
    m = T(A[0] > 7)
    same(x[:, m], A[:, A[0] > 7])
    same(x[np.array(A > 50)], A[A > 50])
    # an int is a plain select (PyTorch's rule; NumPy would move the mask's dim first)
    keep = np.array([True, False, True, False, True])
    same(x[1, :, keep], A[1][:, keep])
    same(x[1, :, [0, 2]], A[1][:, [0, 2]])
    # a 0-d tensor index is an int, as a 0-d long tensor in torch
    same(x[T(2.0)], A[2])
    # a tensor of whole numbers that is not a 0/1 mask of the indexed shape: integer indices
    same(x[T([2.0, 0.0])], A[[2, 0]])
    same(x[:, :, E.arange(3)], A[:, :, :3])


@needs_autograd
def test_reads_are_differentiable():
    x = T(A, requires_grad=True)
    y = x[1:, ::-2, 0].sum() + x[x > 50].sum() * 2 + x[:, [1, 1]].sum()
    y.backward()
    g = np.zeros_like(A)
    g[1:, ::-2, 0] += 1
    g[A > 50] += 2
    g[:, 1] += 2
    np.testing.assert_array_equal(x.grad.numpy(), g)


def test_plain_writes_are_in_place():
    z = E.zeros(2, 3, 4)
    same_obj = z
    z[:, :, 1] = 1.0  # seed 004
    want = np.zeros((2, 3, 4), np.float32)
    want[:, :, 1] = 1
    same(z, want)
    assert same_obj is z
    z[0, ..., -1] = T([1.0, 2.0, 3.0], E.float32)  # value broadcast over the region
    want[0, ..., -1] = [1, 2, 3]
    same(z, want)
    z[z > 1.5] = -1
    want[want > 1.5] = -1
    same(z, want)
    z[1, [0, 2]] = 5
    want[1, [0, 2]] = 5
    same(z, want)
    z[:, ::-1, 0] = T([[7.0, 8.0, 9.0]], E.float32)  # negative step, leading 1-dims dropped
    want[:, ::-1, 0] = [7, 8, 9]
    same(z, want)
    r = E.zeros(3)
    r[[1, 1, 2]] = T([1.0, 2.0, 3.0], E.float32)  # a repeated index: the last write wins
    same(r, np.array([0, 2, 3], np.float32))
    z[0] = np.arange(12.0).reshape(3, 4)  # a NumPy value
    want[0] = np.arange(12).reshape(3, 4)
    same(z, want)


def test_writes_into_a_view_and_a_transposed_tensor():
    x = E.zeros(3, 4).t()  # not contiguous: rebound to the written copy
    x[0] = 1.0
    want = np.zeros((4, 3), np.float32)
    want[0] = 1
    same(x, want)
    x[:, 1] += 2.0  # getitem, iadd, setitem
    want[:, 1] += 2
    same(x, want)


def test_augmented_assignment_and_inplace_methods():
    x = T([1.0, 2.0, 3.0])
    x += 1
    same(x, [2.0, 3.0, 4.0])
    x -= T([1.0, 1.0, 1.0])
    same(x, [1.0, 2.0, 3.0])
    x *= 2
    x /= 4
    same(x, [0.5, 1.0, 1.5])
    assert x.add_(1, alpha=2) is x
    same(x, [2.5, 3.0, 3.5])
    x.sub_(T([0.5, 1.0, 1.5]))
    x.mul_(2).div_(4)
    same(x, [1.0, 1.0, 1.0])
    x.fill_(3)
    same(x, [3.0, 3.0, 3.0])
    x.masked_fill_(T([1.0, 0.0, 1.0]), -1.0)
    same(x, [-1.0, 3.0, -1.0])
    x.clamp_(min=0)
    same(x, [0.0, 3.0, 0.0])
    x.copy_(T([4.0, 5.0, 6.0]))
    same(x, [4.0, 5.0, 6.0])
    x.copy_(T(7.0))  # broadcast
    same(x, [7.0, 7.0, 7.0])
    x.zero_()
    same(x, [0.0, 0.0, 0.0])
    y = E.ones(2)
    y.resize_(2, 2)
    same(y, np.array([[1, 1], [0, 0]], np.float32))
    with pytest.raises(ValueError, match="__iadd__"):
        x += E.ones(2, 3)
    with pytest.raises(ValueError, match="fill_"):
        x.fill_(E.ones(2))


def test_leaf_that_requires_grad_refuses_writes():
    w = E.ones(3, requires_grad=True)
    msg = "leaf Variable that requires grad"
    with pytest.raises(RuntimeError, match=msg):
        w[0] = 2.0
    with pytest.raises(RuntimeError, match=msg):
        w += 1
    with pytest.raises(RuntimeError, match=msg):
        w.fill_(0)
    with pytest.raises(RuntimeError, match=msg):
        w.zero_()
    with pytest.raises(RuntimeError, match=msg):
        w.masked_fill_(w > 0, 0.0)
    with pytest.raises(RuntimeError, match="resize_"):
        w.resize_(4)
    assert w.tolist() == [1.0, 1.0, 1.0]


@needs_autograd
def test_leaf_writes_are_allowed_under_no_grad():
    w = E.ones(3, requires_grad=True)
    with E.autograd.no_grad():
        w[0] = 2.0
        w -= 0.5
    assert w.tolist() == [1.5, 0.5, 0.5] and w.requires_grad and w.is_leaf


@needs_autograd
def test_mask_write_on_a_tensor_with_history_differentiates_like_torch():
    # seed 000: lel = 1 - foo; lel[foo != 0] = 0; then differentiate through lel.
    b = T([[0.0, 0.0, 1.0, 1.0, 0.0, 1.0]], requires_grad=True)
    foo = b.cumsum(1) - 1
    lel = 1 - foo
    lel[foo != 0] = 0
    assert lel.requires_grad
    out = lel / (lel.sum(dim=1, keepdim=True) + 1e-9)
    (g,) = E.autograd.grad(out[0, 1], [b], retain_graph=True)
    # by hand: foo = [-1, -1, 0, 1, 1, 2], only positions 2 survive (lel = 1 there):
    # out[0,1] = 0 (the write cut its dependence on b) and the sum only sees position 2
    np.testing.assert_allclose(g.numpy(), np.zeros((1, 6)), atol=1e-12)
    (g,) = E.autograd.grad((lel * T([[1.0, 2, 3, 4, 5, 6]])).sum(), [b])
    # lel is 1 - foo at position 2 only: d(3·(1 − foo[2]))/db = −3 for b[0..=2]
    np.testing.assert_allclose(g.numpy(), [[-3.0, -3.0, -3.0, 0, 0, 0]], atol=1e-12)


@needs_autograd
def test_writes_with_history_and_tensor_values_reach_both_gradients():
    x = T(np.arange(6.0).reshape(2, 3), requires_grad=True)
    v = T([10.0, 20.0], requires_grad=True)
    y = x * 1
    y[:, 1] = v
    y[0, 0] = v[1] * 3  # a later write into y; v's gradient sums over both
    y -= x  # in place with history
    w = T([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    gx, gv = E.autograd.grad((y * w).sum(), [x, v])
    # y = x·1 outside the written entries, minus x everywhere
    np.testing.assert_allclose(gx.numpy(), [[-1.0, -2.0, 0.0], [0.0, -5.0, 0.0]])
    np.testing.assert_allclose(gv.numpy(), [2.0, 5.0 + 3.0])
    # a plain tensor written with a value that requires grad joins the graph
    z = E.zeros(3, dtype=E.float64)
    z[1] = v[0]
    assert z.requires_grad
    (gv,) = E.autograd.grad(z.sum(), [v])
    np.testing.assert_allclose(gv.numpy(), [1.0, 0.0])


@needs_autograd
def test_seed_002_index_then_iadd_then_write():
    # delta_fbar[:, :, k, 0] += ... on a plain tensor
    d = E.zeros(2, 4, 5, 1)
    for k in range(5):
        d[:, :, k, 0] += float(k)
    np.testing.assert_array_equal(d.numpy()[0, 0, :, 0], np.arange(5.0))


def test_iteration_and_len():
    x = T(A)
    rows = list(x)
    assert len(rows) == 3 and len(x) == 3
    same(rows[1], A[1])
    with pytest.raises(TypeError, match="0-d"):
        iter(T(1.0))


def test_bad_indices():
    x = T(A)
    with pytest.raises(IndexError, match="index 3 is out of range for dim 0 of size 3"):
        x[3]
    with pytest.raises(IndexError, match="index -6 is out of range for dim 2 of size 5"):
        x[0, 0, -6]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0, 0]
    with pytest.raises(IndexError, match="ellipsis"):
        x[..., ...]
    with pytest.raises(IndexError, match="index 7 is out of range for dim 1 of size 4"):
        x[:, [0, 7]]
    with pytest.raises(IndexError, match="mask"):
        x[np.array([True, False])]
    with pytest.raises(IndexError, match="at most one"):
        x[[0, 1], [0, 1]]
    with pytest.raises(TypeError, match="indices must be"):
        x["a"]
    with pytest.raises(TypeError, match="indices must be"):
        x[1.5]
    with pytest.raises(ValueError, match="step"):
        x[::0]
    with pytest.raises(IndexError, match="whole"):
        x[T(0.5)]
    with pytest.raises(ValueError, match="shape"):
        x[0] = E.ones(3, 3)
    with pytest.raises(TypeError, match="value"):
        x[0] = "a"
    with pytest.raises(IndexError, match="out of range"):
        x[5] = 1.0


def test_indexing_agrees_with_torch():
    torch = pytest.importorskip("torch")
    x, tx = T(A), torch.tensor(A)
    for key in [(slice(None), 2), (x > 30, tx > 30), (Ellipsis, [1, 0]), (None, 2, slice(1, 3))]:
        if isinstance(key[0], E.Tensor):
            mine, theirs = x[key[0]], tx[key[1]]
        else:
            mine, theirs = x[key], tx[key]
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    y, ty = x.clone(), tx.clone()
    y[:, 1:3, ::2] = 0.5
    ty[:, 1:3, ::2] = 0.5
    y[y > 50] = -1
    ty[ty > 50] = -1
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
