"""eingrad.optim: SGD / Adam / AdamW updates vs the formulas, param groups, state dicts,
schedulers, bad arguments."""
import math

import numpy as np
import pytest

import eingrad
from eingrad import nn

needs_grad = pytest.mark.skipif(
    not hasattr(eingrad.Tensor, "grad"), reason="needs Tensor.grad (the autograd API)")
needs_backward = pytest.mark.skipif(
    not hasattr(eingrad.Tensor, "backward"), reason="needs Tensor.backward (the autograd API)")


def param(values):
    return nn.Parameter(eingrad.tensor(np.asarray(values, dtype=np.float64)))


def grads(seed, shape, n):
    r = np.random.default_rng(seed)
    return [r.standard_normal(shape) for _ in range(n)]


def run(opt, p, gs):
    """Steps `opt` with the gradients `gs` (set by hand); returns p's values after each."""
    out = []
    for g in gs:
        p.grad = eingrad.tensor(g, dtype=eingrad.float64)
        opt.step()
        out.append(p.numpy().copy())
    return out


@needs_grad
@pytest.mark.parametrize("momentum,dampening,wd,nesterov", [
    (0.0, 0.0, 0.0, False), (0.9, 0.0, 0.0, False), (0.9, 0.3, 0.1, False),
    (0.8, 0.0, 0.05, True)])
def test_sgd_matches_the_update_formula(momentum, dampening, wd, nesterov):
    p0 = np.array([1.0, -2.0, 0.5])
    p = param(p0)
    lr = 0.1
    opt = eingrad.optim.SGD([p], lr=lr, momentum=momentum, dampening=dampening,
                            weight_decay=wd, nesterov=nesterov)
    gs = grads(0, 3, 4)
    got = run(opt, p, gs)
    w, buf = p0.copy(), None
    for k, g in enumerate(gs):
        d = g + wd * w
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        w = w - lr * d
        np.testing.assert_allclose(got[k], w, rtol=1e-12, atol=1e-15)


@needs_grad
@pytest.mark.parametrize("cls,wd", [(eingrad.optim.Adam, 0.0), (eingrad.optim.Adam, 0.1),
                                    (eingrad.optim.AdamW, 0.1)])
def test_adam_and_adamw_match_the_update_formula(cls, wd):
    p0 = np.array([[0.3, -1.0], [2.0, 0.0]])
    p = param(p0)
    lr, b1, b2, eps = 0.01, 0.8, 0.99, 1e-6
    opt = cls([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    gs = grads(1, (2, 2), 5)
    got = run(opt, p, gs)
    w, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(gs, start=1):
        if cls is eingrad.optim.AdamW:
            w = w * (1 - lr * wd)
        else:
            g = g + wd * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat, vhat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        w = w - lr * mhat / (np.sqrt(vhat) + eps)
        np.testing.assert_allclose(got[t - 1], w, rtol=1e-10, atol=1e-14)
    assert set(opt.state[p]) == {"step", "exp_avg", "exp_avg_sq"}
    np.testing.assert_allclose(opt.state[p]["exp_avg"].numpy(), m, rtol=1e-12)


@needs_grad
def test_parameters_without_grad_are_skipped_and_zero_grad_clears():
    a, b = param([1.0]), param([2.0])
    opt = eingrad.optim.SGD([a, b], lr=0.5)
    a.grad = eingrad.tensor([1.0], dtype=eingrad.float64)
    opt.step()
    assert a.tolist() == [0.5] and b.tolist() == [2.0]
    opt.zero_grad(set_to_none=False)
    assert a.grad.tolist() == [0.0] and b.grad is None
    opt.zero_grad()
    assert a.grad is None


@needs_grad
def test_param_groups_have_their_own_hyperparameters_and_lr_changes_apply():
    a, b = param([1.0]), param([1.0])
    opt = eingrad.optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0, "momentum": 0.5}],
                            lr=0.1)
    assert opt.param_groups[0]["momentum"] == 0 and opt.param_groups[1]["lr"] == 1.0
    for p in (a, b):
        p.grad = eingrad.tensor([1.0], dtype=eingrad.float64)
    opt.step()
    np.testing.assert_allclose([a.item(), b.item()], [0.9, 0.0])
    opt.param_groups[0]["lr"] = 0.5  # what a scheduler does
    opt.param_groups[1]["momentum"] = 0.0  # rebuilds that group's optimizer
    opt.step()
    np.testing.assert_allclose([a.item(), b.item()], [0.4, -1.0])


@needs_grad
def test_state_dict_round_trip_continues_exactly():
    gs = grads(2, 3, 6)
    p1 = param([1.0, 2.0, 3.0])
    o1 = eingrad.optim.Adam([p1], lr=0.05)
    run(o1, p1, gs[:3])
    sd = o1.state_dict()
    assert sd["param_groups"][0]["params"] == [0]
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    # a fresh optimizer (other lr) over a parameter with the same values, resumed from sd
    p2 = param(p1.numpy())
    o2 = eingrad.optim.Adam([p2], lr=0.5)
    o2.load_state_dict(sd)
    assert o2.param_groups[0]["lr"] == 0.05
    np.testing.assert_array_equal(run(o1, p1, gs[3:]), run(o2, p2, gs[3:]))
    with pytest.raises(ValueError, match="parameter group"):
        eingrad.optim.Adam([param([1.0]), param([2.0])]).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"shape"):
        eingrad.optim.Adam([param([1.0, 2.0])]).load_state_dict(sd)


@needs_grad
def test_lr_schedulers_set_group_rates():
    p = param([0.0])
    opt = eingrad.optim.SGD([p], lr=1.0)
    sched = eingrad.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.1)
    lrs = []
    for _ in range(4):
        p.grad = eingrad.tensor([1.0], dtype=eingrad.float64)
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    want = [0.1 + 0.9 * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(1, 5)]
    np.testing.assert_allclose(lrs, want)
    # the steps used 1.0 then the scheduled rates
    np.testing.assert_allclose(p.item(), -(1.0 + sum(want[:3])))
    from eingrad.optim.lr_scheduler import LambdaLR, LinearLR, StepLR
    opt2 = eingrad.optim.SGD([param([0.0])], lr=2.0)
    warm = LinearLR(opt2, start_factor=0.5, total_iters=2)
    assert opt2.param_groups[0]["lr"] == 1.0
    warm.step()
    warm.step()
    assert opt2.param_groups[0]["lr"] == 2.0
    assert StepLR(eingrad.optim.SGD([param([0.0])], lr=1.0), 1, 0.5).get_last_lr() == [1.0]
    assert LambdaLR(eingrad.optim.SGD([param([0.0])], lr=3.0), lambda e: 0.5).get_last_lr() \
        == [1.5]


@needs_grad
def test_clip_grad_norm():
    a, b = param([0.0, 0.0]), param([0.0])
    a.grad = eingrad.tensor([3.0, 0.0], dtype=eingrad.float64)
    b.grad = eingrad.tensor([4.0], dtype=eingrad.float64)
    total = nn.utils.clip_grad_norm_([a, b], 1.0)
    assert total.item() == 5.0
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), [0.8], rtol=1e-6)
    nn.utils.clip_grad_value_([a, b], 0.7)
    np.testing.assert_allclose(b.grad.numpy(), [0.7], rtol=1e-6)


def test_bad_arguments_raise_clear_errors():
    p = param([1.0])
    with pytest.raises(ValueError, match="Invalid learning rate: -0.1"):
        eingrad.optim.SGD([p], lr=-0.1)
    with pytest.raises(ValueError, match="Invalid learning rate: nan"):
        eingrad.optim.Adam([p], lr=float("nan"))
    with pytest.raises(TypeError, match="learning rate must be a number"):
        eingrad.optim.SGD([p], lr="fast")
    with pytest.raises(ValueError, match="Invalid momentum value"):
        eingrad.optim.SGD([p], lr=0.1, momentum=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        eingrad.optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta parameter at index 1"):
        eingrad.optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="amsgrad=True is not supported"):
        eingrad.optim.Adam([p], amsgrad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        eingrad.optim.Adam([])
    with pytest.raises(TypeError, match="iterable of Tensors"):
        eingrad.optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match=r"params\[1\] is a int"):
        eingrad.optim.SGD([p, 3], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        eingrad.optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(ValueError, match="does not require grad"):
        eingrad.optim.SGD([eingrad.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="appears twice"):
        eingrad.optim.SGD([p, p], lr=0.1)
    opt = eingrad.optim.SGD([p], lr=0.1)
    opt.param_groups[0]["lr"] = -1.0
    with pytest.raises(ValueError, match="Invalid learning rate"):
        opt.step()


def test_repr_and_defaults_like_torch():
    opt = eingrad.optim.AdamW([param([1.0])])
    g = opt.param_groups[0]
    assert (g["lr"], g["betas"], g["eps"], g["weight_decay"]) == (1e-3, (0.9, 0.999), 1e-8, 1e-2)
    assert repr(opt).startswith("AdamW (\nParameter Group 0\n    amsgrad: False\n")


@needs_grad
def test_steps_match_torch():
    torch = pytest.importorskip("torch")
    gs = grads(3, (3, 2), 5)
    p0 = np.random.default_rng(4).standard_normal((3, 2))
    for ours_cls, torch_cls, kw in (
            (eingrad.optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
            (eingrad.optim.Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.1)),
            (eingrad.optim.AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1))):
        p = param(p0)
        tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
        opt, topt = ours_cls([p], **kw), torch_cls([tp], **kw)
        for g in gs:
            p.grad = eingrad.tensor(g, dtype=eingrad.float64)
            tp.grad = torch.from_numpy(g.copy())
            opt.step()
            topt.step()
        np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-10, atol=1e-14)
