"""eingrad.nn: Module / Parameter, layers, containers, nn.functional, nn.init."""
import copy
import math
from collections import OrderedDict

import numpy as np
import pytest

import eingrad
import eingrad.nn.functional as F
from eingrad import nn

needs_backward = pytest.mark.skipif(
    not hasattr(eingrad.Tensor, "backward"), reason="needs Tensor.backward (the autograd API)")


def t64(a):
    return eingrad.tensor(np.asarray(a, dtype=np.float64), dtype=eingrad.float64)


def rng(seed=0):
    return np.random.default_rng(seed)


# ---- Parameter -------------------------------------------------------------------------


def test_parameter_is_a_leaf_tensor_that_requires_grad_and_keeps_values():
    p = nn.Parameter(eingrad.tensor([1.0, 2.0]))
    assert isinstance(p, eingrad.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad
    assert p.tolist() == [1.0, 2.0]
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.]")
    q = nn.Parameter(eingrad.ones(2), requires_grad=False)
    assert not q.requires_grad
    # operations on a parameter give plain tensors
    assert type(p * 2) is eingrad.Tensor
    # a float64 parameter from a float64 array keeps its dtype
    assert nn.Parameter(np.zeros(3)).dtype == eingrad.float64


def test_parameter_does_not_mark_its_source_as_requiring_grad():
    x = eingrad.ones(3)
    p = nn.Parameter(x)
    assert p.requires_grad and not x.requires_grad


# ---- Module registration, names, counts ------------------------------------------------


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(8, 3, bias=False)
        self.scale = nn.Parameter(eingrad.ones(1))
        self.register_buffer("mask", eingrad.ones(3))
        self.not_a_param = eingrad.zeros(2)  # plain tensors are ordinary attributes

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) * self.scale * self.mask


def test_module_registers_parameters_buffers_and_children_in_order():
    m = TwoLayer()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "fc1.weight", "fc1.bias", "fc2.weight"]
    assert [n for n, _ in m.named_buffers()] == ["mask"]
    assert [n for n, _ in m.named_children()] == ["fc1", "act", "fc2"]
    assert [n for n, _ in m.named_modules()] == ["", "fc1", "act", "fc2"]
    assert sum(p.numel() for p in m.parameters()) == 1 + 4 * 8 + 8 + 8 * 3
    assert list(m.state_dict()) == ["scale", "mask", "fc1.weight", "fc1.bias", "fc2.weight"]
    assert m(eingrad.ones(5, 4)).shape == (5, 3)
    assert m.fc2.bias is None
    assert [n for n, _ in m.named_parameters(recurse=False)] == ["scale"]
    assert m.get_submodule("fc1") is m.fc1 and m.get_parameter("fc1.bias") is m.fc1.bias


def test_sequential_modulelist_moduledict_names_like_torch():
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight",
                                                      "2.bias"]
    assert len(seq) == 3 and isinstance(seq[1], nn.Tanh) and isinstance(seq[-1], nn.Linear)
    assert [type(m).__name__ for m in seq[1:]] == ["Tanh", "Linear"]
    named = nn.Sequential(OrderedDict([("enc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert [n for n, _ in named.named_parameters()] == ["enc.weight", "enc.bias"]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
            self.heads = nn.ModuleDict({"a": nn.Linear(2, 1)})

    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
        "heads.a.weight", "heads.a.bias"]
    net.layers.append(nn.Linear(2, 2))
    assert len(net.layers) == 3 and "layers.2.bias" in net.state_dict()
    assert len(list(nn.ParameterList([eingrad.ones(1), eingrad.ones(2)]).parameters())) == 2


def test_shared_parameter_is_listed_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, lin)
    assert len(list(seq.parameters())) == 2


def test_repr_matches_torch_layout():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Conv1d(1, 2, 3, padding=1))
    assert repr(seq) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Conv1d(1, 2, kernel_size=(3,), stride=(1,), padding=(1,))\n"
        ")")
    assert repr(nn.Dropout(0.1)) == "Dropout(p=0.1, inplace=False)"
    assert repr(nn.LayerNorm(4)) == "LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)"


def test_assigning_a_parameter_replaces_the_weight_forward_uses():
    # seed 004: layer.weight = nn.Parameter(ones_like(layer.weight))
    layer = nn.Conv1d(in_channels=1, out_channels=1, kernel_size=3)
    layer.weight = nn.Parameter(eingrad.ones_like(layer.weight))
    layer.bias = nn.Parameter(eingrad.zeros_like(layer.bias))
    x = eingrad.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    assert layer(x).tolist() == [[[6.0, 9.0, 12.0]]]
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]


def test_wrong_assignments_and_attribute_errors():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        lin.weight = eingrad.ones(2, 2)
    lin.bias = None
    assert lin(eingrad.ones(1, 2)).shape == (1, 2)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lin.nope

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(eingrad.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(eingrad.ones(1))


def test_train_eval_and_requires_grad_propagate():
    m = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    assert m.training and m[1].training
    m.eval()
    assert not m.training and not m[1].training
    m.train()
    assert m[1].training
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_apply_and_hooks_and_deepcopy():
    m = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    m.apply(lambda mod: nn.init.zeros_(mod.weight) if isinstance(mod, nn.Linear) else None)
    assert all(v == 0 for p in (m[0].weight, m[1].weight) for v in p.numpy().ravel())
    outs = []
    h = m.register_forward_hook(lambda mod, args, out: outs.append(out.shape))
    m(eingrad.ones(3, 2))
    h.remove()
    m(eingrad.ones(3, 2))
    assert outs == [(3, 2)]
    c = copy.deepcopy(m)
    assert isinstance(c[0].weight, nn.Parameter)
    nn.init.ones_(c[0].weight)
    assert m[0].weight.numpy().sum() == 0  # the copy has its own data


def test_to_double_keeps_parameter_objects():
    lin = nn.Linear(3, 2)
    w = lin.weight
    lin.double()
    assert lin.weight is w and w.dtype == eingrad.float64 and w.requires_grad
    assert lin(eingrad.ones(1, 3, dtype=eingrad.float64)).dtype == eingrad.float64
    lin.to(eingrad.float32)
    assert w.dtype == eingrad.float32
    with pytest.raises(ValueError, match="CPU"):
        lin.to("cuda")


# ---- state dicts ------------------------------------------------------------------------


def test_state_dict_round_trip_copies_in_place():
    a, b = TwoLayer(), TwoLayer()
    w_obj = b.fc1.weight
    sd = a.state_dict()
    assert all(not t.requires_grad for t in sd.values())
    res = b.load_state_dict(sd)
    assert repr(res) == "<All keys matched successfully>"
    assert b.fc1.weight is w_obj  # values copied into the same parameter
    for k in sd:
        np.testing.assert_array_equal(a.state_dict()[k].numpy(), b.state_dict()[k].numpy())
    x = eingrad.randn(2, 4)
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_load_state_dict_errors_name_keys_and_shapes_and_load_nothing():
    m = nn.Linear(3, 2)
    before = m.weight.numpy().copy()
    sd = OrderedDict(weight=eingrad.zeros(2, 3), bias=eingrad.zeros(5), extra=eingrad.ones(1))
    with pytest.raises(RuntimeError, match=r"size mismatch for bias: copying a param with "
                                           r"shape \(5,\) from checkpoint, the shape in "
                                           r"current model is \(2,\)") as e:
        m.load_state_dict(sd)
    assert 'Unexpected key(s) in state_dict: "extra"' in str(e.value)
    np.testing.assert_array_equal(m.weight.numpy(), before)
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "bias"'):
        m.load_state_dict({"weight": eingrad.zeros(2, 3)})
    res = m.load_state_dict({"weight": eingrad.zeros(2, 3)}, strict=False)
    assert res.missing_keys == ["bias"] and res.unexpected_keys == []
    assert m.weight.numpy().sum() == 0
    with pytest.raises(TypeError, match="dict-like"):
        m.load_state_dict([1, 2])


# ---- layers vs NumPy ---------------------------------------------------------------------


def test_linear_matches_numpy_and_checks_shapes():
    lin = nn.Linear(4, 3, dtype=eingrad.float64)
    x = rng().standard_normal((2, 5, 4))
    want = x @ lin.weight.numpy().T + lin.bias.numpy()
    np.testing.assert_allclose(lin(t64(x)).numpy(), want, rtol=1e-12)
    with pytest.raises(ValueError, match=r"input of shape \[2, 5\] does not match weight of "
                                         r"shape \[3, 4\]"):
        lin(t64(np.ones((2, 5))))
    with pytest.raises(TypeError, match="input dtype float32 differs from weight dtype float64"):
        lin(eingrad.ones(2, 4))


def test_linear_init_bounds_and_manual_seed():
    eingrad.manual_seed(123)
    a = nn.Linear(16, 4)
    eingrad.manual_seed(123)
    b = nn.Linear(16, 4)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    np.testing.assert_array_equal(a.bias.numpy(), b.bias.numpy())
    assert np.abs(a.weight.numpy()).max() <= 0.25 and np.abs(a.bias.numpy()).max() <= 0.25
    assert np.abs(a.weight.numpy()).max() > 0.15  # actually spread over the interval
    c = nn.Linear(16, 4)
    assert not np.array_equal(b.weight.numpy(), c.weight.numpy())


def np_conv1d(x, w, b, stride=1, pad=(0, 0), dilation=1, groups=1):
    n, cin, length = x.shape
    cout, cin_g, k = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), pad))
    lout = (xp.shape[2] - dilation * (k - 1) - 1) // stride + 1
    y = np.zeros((n, cout, lout))
    og = cout // groups
    for o in range(cout):
        g = o // og
        for t in range(lout):
            for c in range(cin_g):
                for j in range(k):
                    y[:, o, t] += w[o, c, j] * xp[:, g * cin_g + c, t * stride + j * dilation]
    if b is not None:
        y += b[None, :, None]
    return y


@pytest.mark.parametrize("kw,pad", [
    (dict(), (0, 0)),
    (dict(stride=2, padding=1), (1, 1)),
    (dict(dilation=2, padding=2), (2, 2)),
    (dict(groups=2, padding=1), (1, 1)),
    (dict(padding="same"), (1, 1)),
    (dict(padding="causal"), (2, 0)),
    (dict(padding="valid"), (0, 0)),
])
def test_conv1d_matches_numpy(kw, pad):
    conv = nn.Conv1d(4, 6, 3, dtype=eingrad.float64, **kw)
    x = rng(1).standard_normal((2, 4, 9))
    want = np_conv1d(x, conv.weight.numpy(), conv.bias.numpy(), kw.get("stride", 1), pad,
                     kw.get("dilation", 1), kw.get("groups", 1))
    np.testing.assert_allclose(conv(t64(x)).numpy(), want, rtol=1e-10, atol=1e-12)
    # unbatched input (C, L)
    np.testing.assert_allclose(conv(t64(x[0])).numpy(), want[0], rtol=1e-10, atol=1e-12)


def test_conv1d_same_with_even_kernel_pads_right_more():
    w = t64(np.ones((1, 1, 4)))
    x = t64(np.arange(1.0, 6.0).reshape(1, 1, 5))
    want = np_conv1d(x.numpy(), w.numpy(), None, pad=(1, 2))
    np.testing.assert_allclose(F.conv1d(x, w, padding="same").numpy(), want)
    np.testing.assert_allclose(F.conv1d(x, w, padding=(1, 2)).numpy(), want)


def test_conv1d_bad_arguments():
    with pytest.raises(ValueError, match="groups=3 must divide in_channels=4"):
        nn.Conv1d(4, 6, 3, groups=3)
    with pytest.raises(ValueError, match="padding"):
        nn.Conv1d(1, 1, 3, padding="full")
    with pytest.raises(ValueError, match="'same'"):
        nn.Conv1d(1, 1, 3, padding="same", stride=2)
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv1d(1, 1, 3, padding_mode="reflect")
    w = eingrad.ones(1, 1, 3)
    with pytest.raises(ValueError, match="stride must be at least 1"):
        F.conv1d(eingrad.ones(1, 1, 5), w, stride=0)
    with pytest.raises(ValueError, match="conv1d"):
        F.conv1d(eingrad.ones(1, 2, 5), w)  # channel mismatch
    with pytest.raises(ValueError, match="weight must have shape"):
        F.conv1d(eingrad.ones(1, 1, 5), eingrad.ones(3))


def test_layer_norm_matches_numpy():
    ln = nn.LayerNorm((3, 4), dtype=eingrad.float64)
    nn.init.normal_(ln.weight)
    nn.init.normal_(ln.bias)
    x = rng(2).standard_normal((2, 3, 4))
    mu = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    want = (x - mu) / np.sqrt(var + 1e-5) * ln.weight.numpy() + ln.bias.numpy()
    np.testing.assert_allclose(ln(t64(x)).numpy(), want, rtol=1e-10, atol=1e-12)
    assert [n for n, _ in nn.LayerNorm(4, bias=False).named_parameters()] == ["weight"]
    assert list(nn.LayerNorm(4, elementwise_affine=False).parameters()) == []
    with pytest.raises(ValueError, match=r"does not end in normalized_shape \[3, 4\]"):
        ln(t64(np.ones((2, 4, 3))))


def test_rms_norm_matches_numpy():
    x = rng(3).standard_normal((2, 5))
    w = rng(4).standard_normal(5)
    want = x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6) * w
    got = F.rms_norm(t64(x), (5,), t64(w), eps=1e-6)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    assert nn.RMSNorm(5)(eingrad.ones(2, 5)).shape == (2, 5)


def test_embedding_lookup_ids_from_tensor_list_and_array():
    emb = nn.Embedding(5, 3, dtype=eingrad.float64)
    w = emb.weight.numpy()
    ids = np.array([[0, 4], [2, 2]])
    for inp in (eingrad.tensor(ids), ids, ids.tolist()):
        np.testing.assert_array_equal(emb(inp).numpy(), w[ids])
    with pytest.raises(IndexError, match="index 5 .* out of range for a table of 5 rows"):
        emb([5])
    with pytest.raises(ValueError, match="whole numbers"):
        emb(eingrad.tensor([0.5]))
    pad = nn.Embedding(4, 2, padding_idx=1)
    assert pad.weight.numpy()[1].tolist() == [0.0, 0.0]
    pre = nn.Embedding.from_pretrained(eingrad.eye(3))
    assert not pre.weight.requires_grad and pre([2]).tolist() == [[0.0, 0.0, 1.0]]


def test_dropout_train_and_eval():
    eingrad.manual_seed(0)
    d = nn.Dropout(0.25)
    y = d(eingrad.ones(4000, dtype=eingrad.float64)).numpy()
    assert set(np.unique(y)) <= {0.0, 1 / 0.75}
    assert abs((y == 0).mean() - 0.25) < 0.03
    d.eval()
    np.testing.assert_array_equal(d(eingrad.ones(10)).numpy(), np.ones(10))
    assert F.dropout(eingrad.ones(3), 1.0).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\]"):
        F.dropout(eingrad.ones(3), -0.1)


# ---- functional vs NumPy -----------------------------------------------------------------


def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_activations_match_numpy():
    x = np.linspace(-4, 4, 17)
    xt = t64(x)
    erf = np.vectorize(math.erf)
    cases = {
        F.relu: np.maximum(x, 0),
        F.sigmoid: 1 / (1 + np.exp(-x)),
        F.tanh: np.tanh(x),
        F.silu: x / (1 + np.exp(-x)),
        F.softplus: np.log1p(np.exp(x)),
        F.logsigmoid: -np.log1p(np.exp(-x)),
        F.gelu: 0.5 * x * (1 + erf(x / math.sqrt(2))),
        (lambda t: F.gelu(t, approximate="tanh")):
            0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
        (lambda t: F.leaky_relu(t, 0.2)): np.where(x > 0, x, 0.2 * x),
        (lambda t: F.elu(t, 1.5)): np.where(x > 0, x, 1.5 * (np.exp(x) - 1)),
        (lambda t: F.softplus(t, beta=2.0)): np.log1p(np.exp(2 * x)) / 2,
    }
    for f, want in cases.items():
        np.testing.assert_allclose(f(xt).numpy(), want, rtol=1e-12, atol=1e-14)
    for mod, f in ((nn.ReLU(), F.relu), (nn.GELU(), F.gelu), (nn.SiLU(), F.silu),
                   (nn.Tanh(), F.tanh), (nn.Sigmoid(), F.sigmoid), (nn.LogSigmoid(), F.logsigmoid)):
        np.testing.assert_array_equal(mod(xt).numpy(), f(xt).numpy())
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(xt, approximate="fast")


def test_logsigmoid_is_stable_for_large_inputs():
    # seed 002 uses F.logsigmoid on large logits
    y = F.logsigmoid(t64([-1000.0, 0.0, 1000.0])).numpy()
    np.testing.assert_allclose(y, [-1000.0, -math.log(2), 0.0])


def test_softmax_and_log_softmax_match_numpy():
    x = rng(5).standard_normal((3, 4, 5))
    for dim in (0, 1, -1):
        np.testing.assert_allclose(F.softmax(t64(x), dim=dim).numpy(), np_softmax(x, dim),
                                   rtol=1e-12)
        np.testing.assert_allclose(F.log_softmax(t64(x), dim=dim).numpy(),
                                   np.log(np_softmax(x, dim)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(nn.Softmax(dim=1)(t64(x)).numpy(), np_softmax(x, 1), rtol=1e-12)
    with pytest.raises(IndexError, match="dim 3 is out of range"):
        F.softmax(t64(x), dim=3)


def test_pad_matches_numpy_and_crops_with_negative_amounts():
    x = rng(6).standard_normal((2, 3, 4))
    got = F.pad(t64(x), (1, 2, 0, 1), value=7.0).numpy()
    np.testing.assert_array_equal(got, np.pad(x, ((0, 0), (0, 1), (1, 2)), constant_values=7.0))
    np.testing.assert_array_equal(F.pad(t64(x), (-1, 1)).numpy(),
                                  np.pad(x, ((0, 0), (0, 0), (0, 1)))[..., 1:])
    with pytest.raises(ValueError, match="even length"):
        F.pad(t64(x), (1, 2, 3))
    with pytest.raises(ValueError, match="mode='constant'"):
        F.pad(t64(x), (1, 1), mode="reflect")


def test_mse_and_bce_losses_match_numpy():
    a, b = rng(7).standard_normal((3, 4)), rng(8).standard_normal((3, 4))
    np.testing.assert_allclose(F.mse_loss(t64(a), t64(b)).item(), ((a - b) ** 2).mean())
    np.testing.assert_allclose(F.mse_loss(t64(a), t64(b), reduction="sum").item(),
                               ((a - b) ** 2).sum())
    np.testing.assert_allclose(nn.MSELoss(reduction="none")(t64(a), t64(b)).numpy(),
                               (a - b) ** 2)
    y = (b > 0).astype(float)
    want = np.logaddexp(0, a) - a * y
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(t64(a), t64(y)).item(),
                               want.mean(), rtol=1e-12)
    np.testing.assert_allclose(nn.BCEWithLogitsLoss(reduction="none")(t64(a), t64(y)).numpy(),
                               want, rtol=1e-12)
    with pytest.raises(ValueError, match=r"input of shape \[3, 4\] and target of shape \[4\]"):
        F.mse_loss(t64(a), t64(b[0]))
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none'"):
        F.mse_loss(t64(a), t64(b), reduction="avg")
    with pytest.raises(ValueError, match="pos_weight"):
        F.binary_cross_entropy_with_logits(t64(a), t64(y), pos_weight=t64(np.ones(4)))


def np_ce(logits, targets):
    ls = np.log(np_softmax(logits, -1))
    return -ls[np.arange(len(targets)), targets]


def test_cross_entropy_and_nll_match_numpy():
    x = rng(9).standard_normal((6, 5))
    t = np.array([0, 4, 2, 2, 1, 3])
    per = np_ce(x, t)
    np.testing.assert_allclose(F.cross_entropy(t64(x), t).item(), per.mean(), rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(t64(x), eingrad.tensor(t), reduction="sum")
                               .item(), per.sum(), rtol=1e-12)
    np.testing.assert_allclose(nn.CrossEntropyLoss(reduction="none")(t64(x), list(t)).numpy(),
                               per, rtol=1e-12)
    # ignore_index: left out of the mean
    t_ign = t.copy()
    t_ign[[1, 3]] = -100
    keep = t_ign != -100
    np.testing.assert_allclose(F.cross_entropy(t64(x), t_ign).item(), per[keep].mean(),
                               rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(t64(x), t_ign, reduction="none").numpy(),
                               np.where(keep, per, 0.0), rtol=1e-12)
    # label smoothing
    ls = np.log(np_softmax(x, -1))
    want = (0.9 * per - 0.1 * ls.mean(-1)).mean()
    np.testing.assert_allclose(F.cross_entropy(t64(x), t, label_smoothing=0.1).item(), want,
                               rtol=1e-12)
    # class probabilities
    p = np_softmax(rng(10).standard_normal((6, 5)), -1)
    np.testing.assert_allclose(F.cross_entropy(t64(x), t64(p)).item(),
                               -(p * ls).sum(-1).mean(), rtol=1e-12)
    # (N, C, d) logits
    x3 = rng(11).standard_normal((2, 5, 3))
    t3 = np.array([[0, 1, 4], [2, 3, 3]])
    want3 = np_ce(np.moveaxis(x3, 1, -1).reshape(-1, 5), t3.ravel()).reshape(2, 3)
    np.testing.assert_allclose(F.cross_entropy(t64(x3), t3, reduction="none").numpy(), want3,
                               rtol=1e-12)
    # nll_loss of log_softmax is cross_entropy
    np.testing.assert_allclose(F.nll_loss(F.log_softmax(t64(x), dim=1), t).item(), per.mean(),
                               rtol=1e-12)
    with pytest.raises(IndexError, match="target 5 .* out of range for 5 classes"):
        F.cross_entropy(t64(x), [0, 1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match=r"target of shape \[3\] does not match"):
        F.cross_entropy(t64(x), [0, 1, 2])
    with pytest.raises(ValueError, match="whole numbers"):
        F.cross_entropy(t64(x), [0.5] * 6)


def test_one_hot():
    ids = eingrad.tensor([[1, 0], [2, 2]])
    np.testing.assert_array_equal(F.one_hot(ids, 4).numpy(), np.eye(4)[[[1, 0], [2, 2]]])
    assert F.one_hot([0, 2]).shape == (2, 3)
    with pytest.raises(ValueError, match="num_classes"):
        F.one_hot([0, 1], -2)


def test_causal_self_attention_is_causal_and_block_runs():
    eingrad.manual_seed(3)
    attn = nn.CausalSelfAttention(8, 2, dtype=eingrad.float64)
    x = rng(12).standard_normal((1, 5, 8))
    y = attn(t64(x)).numpy()
    x2 = x.copy()
    x2[0, 3:] += 1.0  # changing later positions leaves earlier outputs alone
    y2 = attn(t64(x2)).numpy()
    np.testing.assert_allclose(y[0, :3], y2[0, :3], rtol=1e-12)
    assert not np.allclose(y[0, 3:], y2[0, 3:])
    blk = nn.Block(8, 2)
    assert [n for n, _ in blk.named_parameters()][:4] == [
        "ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias"]
    with pytest.raises(ValueError, match="n_head=3 must be"):
        nn.CausalSelfAttention(8, 3)


# ---- init --------------------------------------------------------------------------------


def test_init_functions_fill_in_place_with_the_right_spread():
    w = eingrad.zeros(200, 300, dtype=eingrad.float64)
    obj = w
    nn.init.xavier_uniform_(w)
    b = math.sqrt(6 / 500)
    assert w is obj and np.abs(w.numpy()).max() <= b and np.abs(w.numpy()).max() > 0.9 * b
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w.numpy().std() - math.sqrt(2 / 300)) < 0.01 * math.sqrt(2 / 300) * 5
    nn.init.normal_(w, mean=2.0, std=0.5)
    assert abs(w.numpy().mean() - 2.0) < 0.01 and abs(w.numpy().std() - 0.5) < 0.01
    nn.init.constant_(w, 3.0)
    assert (w.numpy() == 3.0).all()
    nn.init.trunc_normal_(w, std=1.0, a=-0.5, b=0.5)
    assert np.abs(w.numpy()).max() <= 0.5
    assert nn.init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(eingrad.zeros(3))
    with pytest.raises(ValueError, match="mode"):
        nn.init.kaiming_uniform_(w, mode="fan_avg")
    with pytest.raises(ValueError, match="low ≤ high"):
        nn.init.uniform_(w, 1.0, -1.0)


# ---- gradients (need the autograd API) ---------------------------------------------------


def numeric_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (f(xp) - f(xm)) / (2 * eps)
    return g


def check_grad(fn, *arrays, rtol=1e-6, atol=1e-8):
    """fn(*tensors) -> scalar tensor; compares d/d(each input) with finite differences."""
    tensors = [eingrad.tensor(a, dtype=eingrad.float64, requires_grad=True) for a in arrays]
    fn(*tensors).backward()
    for k, a in enumerate(arrays):
        def f(v, k=k):
            args = [t64(v) if j == k else t64(arrays[j]) for j in range(len(arrays))]
            return fn(*args).item()
        np.testing.assert_allclose(tensors[k].grad.numpy(), numeric_grad(f, a), rtol=rtol,
                                   atol=atol)


@needs_backward
def test_functional_gradients_match_finite_differences():
    r = rng(13)
    x, w, b = r.standard_normal((2, 3, 4)), r.standard_normal((5, 4)), r.standard_normal(5)
    w_out = r.standard_normal((2, 3, 5))

    def weighted(y, wo):
        return (y * t64(wo)).sum() if hasattr(y, "sum") else F.mse_loss(y, t64(wo), "sum")

    check_grad(lambda x, w, b: F.mse_loss(F.linear(x, w, b), t64(w_out), reduction="sum"),
               x, w, b)
    xc, wc = r.standard_normal((2, 4, 7)), r.standard_normal((6, 2, 3))
    tc = r.standard_normal((2, 6, 4))
    check_grad(lambda x, w: F.mse_loss(F.conv1d(x, w, stride=2, padding=1, groups=2), t64(tc),
                                       reduction="sum"), xc, wc)
    tl = r.standard_normal((2, 3, 4))
    check_grad(lambda x, g, b: F.mse_loss(F.layer_norm(x, (4,), g, b), t64(tl), "sum"),
               x, r.standard_normal(4), r.standard_normal(4))
    logits = r.standard_normal((4, 5))
    check_grad(lambda z: F.cross_entropy(z, [1, 0, 4, 2], label_smoothing=0.1), logits)
    check_grad(lambda z: F.mse_loss(F.logsigmoid(z), t64(np.ones((4, 5))), "sum"), logits)
    check_grad(lambda z: F.mse_loss(F.softmax(z, dim=0), t64(np.ones((4, 5))), "sum"), logits)
    check_grad(lambda z: F.mse_loss(F.pad(z, (1, -1, 2, 0)), t64(np.ones((6, 5))), "sum"),
               logits)
    table = r.standard_normal((5, 3))
    check_grad(lambda wt: F.mse_loss(F.embedding([[1, 1], [4, 0]], wt),
                                     t64(np.ones((2, 2, 3))), "sum"), table)
    check_grad(lambda z: F.binary_cross_entropy_with_logits(z, t64(np.ones((4, 5)) * 0.3)),
               logits)
    del weighted


@needs_backward
def test_mlp_trains_on_a_toy_regression_with_sgd_and_adam():
    r = rng(14)
    x = r.uniform(-1, 1, (64, 2))
    y = (np.sin(2 * x[:, :1]) + x[:, 1:] ** 2)
    xt, yt = eingrad.tensor(x, dtype=eingrad.float32), eingrad.tensor(y, dtype=eingrad.float32)
    for make_opt, steps in ((lambda p: eingrad.optim.SGD(p, lr=0.1, momentum=0.9), 300),
                            (lambda p: eingrad.optim.Adam(p, lr=0.01), 300)):
        eingrad.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 1))
        opt = make_opt(model.parameters())
        first = None
        for _ in range(steps):
            opt.zero_grad()
            loss = F.mse_loss(model(xt), yt)
            loss.backward()
            opt.step()
            first = loss.item() if first is None else first
        final = F.mse_loss(model(xt), yt).item()
        assert final < 0.01 and final < first / 10, (first, final)


@needs_backward
def test_dni_style_modules_with_module_list_and_adam():
    # seed 001: nn.Module subclasses with forward, ModuleList, F.relu, F.mse_loss, Adam
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(3, 8), nn.Linear(8, 8), nn.Linear(8, 1)])

        def forward(self, x):
            for layer in self.layers[:-1]:
                x = F.relu(layer(x))
            return self.layers[-1](x)

    eingrad.manual_seed(1)
    net = Net()
    opt = eingrad.optim.Adam(net.parameters(), lr=1e-2)
    x = eingrad.tensor(rng(15).standard_normal((32, 3)).tolist())
    y = eingrad.tensor(rng(16).standard_normal((32, 1)).tolist())
    losses = []
    for _ in range(50):
        opt.zero_grad()
        loss = F.mse_loss(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


# ---- PyTorch comparisons ------------------------------------------------------------------


def test_layers_match_torch_with_the_same_weights():
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    r = rng(17)
    x = r.standard_normal((2, 4, 9))
    conv = nn.Conv1d(4, 6, 3, padding=2, dilation=2, groups=2, dtype=eingrad.float64)
    tconv = torch.nn.Conv1d(4, 6, 3, padding=2, dilation=2, groups=2, dtype=torch.float64)
    tconv.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in conv.state_dict().items()})
    np.testing.assert_allclose(conv(t64(x)).numpy(), tconv(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    z = r.standard_normal((5, 7))
    tz = torch.from_numpy(z)
    for ours, theirs in ((F.logsigmoid, tF.logsigmoid), (F.gelu, tF.gelu), (F.silu, tF.silu),
                         (lambda t: F.log_softmax(t, 1), lambda t: tF.log_softmax(t, 1)),
                         (lambda t: F.pad(t, (2, -1, 1, 1), value=3.0),
                          lambda t: tF.pad(t, (2, -1, 1, 1), value=3.0))):
        np.testing.assert_allclose(ours(t64(z)).numpy(), theirs(tz).numpy(), rtol=1e-12,
                                   atol=1e-14)
    tgt = np.array([0, 6, 3, -100, 2])
    np.testing.assert_allclose(
        F.cross_entropy(t64(z), tgt, label_smoothing=0.2).item(),
        tF.cross_entropy(tz, torch.from_numpy(tgt), label_smoothing=0.2).item(), rtol=1e-12)


def test_parameter_names_and_counts_match_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.LayerNorm(4), nn.Conv1d(4, 2, 3),
                         nn.Embedding(5, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.LayerNorm(4),
                                 torch.nn.Conv1d(4, 2, 3), torch.nn.Embedding(5, 2))
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    # a torch checkpoint loads into the eingrad model
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(ours[0].weight.numpy(), theirs[0].weight.detach().numpy())
    assert repr(ours) == repr(theirs)


# ---- BatchNorm1d, Flatten, embedding padding ----------------------------------------------


def test_batchnorm1d_training_and_eval_match_numpy():
    bn = nn.BatchNorm1d(3, momentum=0.2, dtype=eingrad.float64)
    nn.init.normal_(bn.weight)
    nn.init.normal_(bn.bias)
    w, b = bn.weight.numpy(), bn.bias.numpy()
    r = rng(20)
    rm, rv = np.zeros(3), np.ones(3)
    for _ in range(3):
        x = r.standard_normal((4, 3, 5)) * 2 + 1
        mu, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
        want = (x - mu[:, None]) / np.sqrt(var[:, None] + 1e-5) * w[:, None] + b[:, None]
        np.testing.assert_allclose(bn(t64(x)).numpy(), want, rtol=1e-10, atol=1e-12)
        rm = 0.8 * rm + 0.2 * mu
        rv = 0.8 * rv + 0.2 * x.var(axis=(0, 2), ddof=1)
    np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), rv, rtol=1e-12)
    assert bn.num_batches_tracked.item() == 3
    bn.eval()
    x = r.standard_normal((2, 3))
    want = (x - rm) / np.sqrt(rv + 1e-5) * w + b
    np.testing.assert_allclose(bn(t64(x)).numpy(), want, rtol=1e-10)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                     "num_batches_tracked"]
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3\)"):
        bn(t64(np.ones((2, 4))))


def test_flatten_unflatten():
    x = eingrad.ones(2, 3, 4)
    assert nn.Flatten()(x).shape == (2, 12) and nn.Flatten(0)(x).shape == (24,)
    assert nn.Unflatten(1, (2, 6))(nn.Flatten()(x)).shape == (2, 2, 6)


@needs_backward
def test_embedding_padding_idx_gets_no_gradient():
    emb = nn.Embedding(4, 2, padding_idx=0, dtype=eingrad.float64)
    out = emb([[0, 1], [0, 3]])
    np.testing.assert_array_equal(out.numpy()[0, 0], [0.0, 0.0])
    (out * 2.0).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.numpy(),
                                  [[0, 0], [2, 2], [0, 0], [2, 2]])
    with pytest.raises(ValueError, match="padding_idx 7 is out of range"):
        F.embedding([1], emb.weight, padding_idx=7)


def test_batchnorm_matches_torch():
    torch = pytest.importorskip("torch")
    ours = nn.BatchNorm1d(3, dtype=eingrad.float64)
    theirs = torch.nn.BatchNorm1d(3, dtype=torch.float64)
    r = rng(21)
    for _ in range(2):
        x = r.standard_normal((6, 3))
        np.testing.assert_allclose(ours(t64(x)).numpy(),
                                   theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-10)
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k].numpy(), v.numpy(), rtol=1e-12)
