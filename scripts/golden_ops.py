#!/usr/bin/env python3
"""Writes tests/golden/ops.json: reference values for tests/ops_values.rs, from PyTorch (f64).

For every case: the inputs, the forward output, a cotangent u, the gradient of sum(op(x)·u)
with respect to every differentiable input (first derivative), a direction v per input and the
Hessian-vector product d/dx <grad, v> (second derivative, via create_graph=True).

Run from the crate root:  /work/ref-venv/bin/python scripts/golden_ops.py
The tests never run Python; they read the JSON file this script writes.
"""
import json
import math
import os

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
RNG = np.random.default_rng(20240611)
INF = float("inf")
NAN = float("nan")


def enc(v):
    """A float as JSON: 12 significant digits, or a string for non-finite values."""
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    r = float(f"{v:.12g}")
    return int(r) if r == int(r) and abs(r) < 1e15 else r


def exact(t):
    """All digits (shortest repr that round-trips)."""
    return [float(v) for v in t.detach().clone().reshape(-1).tolist()]


def flat(t):
    return [enc(v) for v in t.detach().clone().reshape(-1).tolist()]


def rnd(shape, lo=-2.0, hi=2.0, away=None):
    """Uniform values rounded to 4 decimals; `away` = list of kinks to stay 0.05 away from."""
    n = int(np.prod(shape)) if len(shape) else 1
    vals = []
    while len(vals) < n:
        x = round(float(RNG.uniform(lo, hi)), 4)
        if away is not None and any(abs(x - k) < 0.05 for k in away):
            continue
        vals.append(x)
    return torch.tensor(vals).reshape(shape)


def randn(shape):
    n = int(np.prod(shape)) if len(shape) else 1
    return torch.tensor([round(float(v), 4) for v in RNG.standard_normal(n)]).reshape(shape)


CASES = []


def case(name, op, params, inputs, fn, diff=None, grads=True, hvp=True, f32=True, tuple_out=False):
    """Records one case. `fn(*inputs)` is the torch reference; `op`/`params` tell the Rust test
    which eingrad call to make."""
    diff = diff if diff is not None else [True] * len(inputs)
    xs = [x.detach().clone().requires_grad_(d) for x, d in zip(inputs, diff)]
    out = fn(*xs)
    indices = None
    if tuple_out:
        out, idx = out
        indices = idx.reshape(-1).tolist()
    c = {
        "name": name,
        "op": op,
        "params": {k: (enc(v) if isinstance(v, float) else v) for k, v in params.items()},
        "inputs": [{"shape": list(x.shape), "data": flat(x)} for x in inputs],
        "diff": diff,
        "out": {"shape": list(out.shape), "data": flat(out)},
        "f32": f32,
    }
    if indices is not None:
        c["indices"] = indices
    if grads and out.requires_grad:
        u = randn(list(out.shape))
        dx = [x for x, d in zip(xs, diff) if d]
        g = torch.autograd.grad(out, dx, u, create_graph=True, allow_unused=True)
        g = [torch.zeros_like(x) if gg is None else gg for gg, x in zip(g, dx)]
        c["u"] = flat(u)
        gi = iter(g)
        c["grads"] = [flat(next(gi)) if d else None for d in diff]
        if hvp:
            vs = [randn(list(x.shape)) for x in dx]
            s = sum((gg * v).sum() for gg, v in zip(g, vs))
            if s.requires_grad:
                h = torch.autograd.grad(s, dx, allow_unused=True)
                h = [torch.zeros_like(x) if hh is None else hh for hh, x in zip(h, dx)]
            else:
                h = [torch.zeros_like(x) for x in dx]
            vi, hi = iter(vs), iter(h)
            c["v"] = [flat(next(vi)) if d else None for d in diff]
            c["hvp"] = [flat(next(hi)) if d else None for d in diff]
    CASES.append(c)


F = torch.nn.functional
S = [3, 4]

# ---------------------------------------------------------------- unary, away from kinks
unary = {
    "neg": (lambda x: -x, {}),
    "abs": (torch.abs, {"away": [0.0]}),
    "exp": (torch.exp, {}),
    "log": (torch.log, {"lo": 0.2, "hi": 3.0}),
    "log1p": (torch.log1p, {"lo": -0.8, "hi": 3.0}),
    "sqrt": (torch.sqrt, {"lo": 0.2, "hi": 3.0}),
    "rsqrt": (torch.rsqrt, {"lo": 0.2, "hi": 3.0}),
    "sin": (torch.sin, {"lo": -4, "hi": 4}),
    "cos": (torch.cos, {"lo": -4, "hi": 4}),
    "tanh": (torch.tanh, {}),
    "sigmoid": (torch.sigmoid, {"lo": -5, "hi": 5}),
    "logsigmoid": (F.logsigmoid, {"lo": -5, "hi": 5}),
    "softplus": (F.softplus, {"lo": -5, "hi": 5}),
    "relu": (F.relu, {"away": [0.0]}),
    "gelu": (F.gelu, {"lo": -3, "hi": 3}),
    "silu": (F.silu, {"lo": -5, "hi": 5}),
    "erf": (torch.erf, {}),
}
for name, (fn, kw) in unary.items():
    case(name, name, {}, [rnd(S, **kw)], fn)
# a non-contiguous (transposed) input exercises the strided kernel path
case("exp_transposed", "exp", {"transpose_input": True}, [rnd([4, 3])], lambda x: torch.exp(x.t()))

for p in [2.0, 3.0, 0.5, -1.5, 0.0, 1.0]:
    case(f"powf_{p}", "powf", {"p": p}, [rnd(S, lo=0.3, hi=2.5)], lambda x, p=p: x**p)
case("powf_3_negative_base", "powf", {"p": 3.0}, [rnd(S)], lambda x: x**3.0)
case("clamp_both", "clamp", {"min": -0.5, "max": 0.7}, [rnd(S, away=[-0.5, 0.7])], lambda x: x.clamp(-0.5, 0.7))
case("clamp_min", "clamp", {"min": 0.1}, [rnd(S, away=[0.1])], lambda x: x.clamp(min=0.1))
case("clamp_max", "clamp", {"max": -0.2}, [rnd(S, away=[-0.2])], lambda x: x.clamp(max=-0.2))
# scalar forms
case("add_scalar", "add_scalar", {"c": 1.25}, [rnd(S)], lambda x: x + 1.25)
case("mul_scalar", "mul_scalar", {"c": -3.5}, [rnd(S)], lambda x: x * -3.5)
case("div_scalar", "div_scalar", {"c": 4.0}, [rnd(S)], lambda x: x / 4.0)
case("rsub_scalar", "rsub_scalar", {"c": 2.0}, [rnd(S)], lambda x: 2.0 - x)

# ---------------------------------------------------------------- binary with broadcasting
pairs = [
    ("same", [3, 4], [3, 4]),
    ("col_row", [3, 1], [1, 4]),
    ("rank_diff", [2, 3, 4], [4]),
    ("rank_diff_rev", [4], [2, 3, 1]),
    ("scalar_tensor", [], [3]),
    ("inner_one", [2, 1, 3], [2, 4, 1]),
]
binary = {
    "add": (torch.add, {}, {}),
    "sub": (torch.sub, {}, {}),
    "mul": (torch.mul, {}, {}),
    "div": (torch.div, {}, {"away": [0.0], "lo": -2, "hi": 2}),
    "pow": (torch.pow, {"lo": 0.3, "hi": 2.0}, {"lo": -1.5, "hi": 2.5}),
    "maximum": (torch.maximum, {}, {}),
    "minimum": (torch.minimum, {}, {}),
}
for name, (fn, ka, kb) in binary.items():
    for tag, sa, sb in pairs:
        a = rnd(sa, **ka)
        b = rnd(sb, **kb)
        if name in ("maximum", "minimum"):
            # keep |a - b| away from 0 so the result is smooth in both inputs
            while (a - b).abs().amin() < 0.05:
                b = rnd(sb, **kb)
        case(f"{name}_{tag}", name, {}, [a, b], fn)
# maximum/minimum ties split the gradient evenly
ta = torch.tensor([1.0, 2.0, 3.0, -1.0])
tb = torch.tensor([1.0, 5.0, 3.0, -2.0])
case("maximum_ties", "maximum", {}, [ta, tb], torch.maximum)
case("minimum_ties", "minimum", {}, [ta, tb], torch.minimum)
# pow with a zero base: d/db = 0 there
case("pow_zero_base", "pow", {}, [torch.tensor([0.0, 1.5, 2.0]), torch.tensor([2.0, 1.5, 3.0])], torch.pow, hvp=False)

# comparisons (forward only), with ties
ca = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
cb = torch.tensor([2.0, 2.0, 7.0])
for name in ["eq", "ne", "lt", "le", "gt", "ge"]:
    case(f"{name}_bcast", name, {}, [ca, cb], lambda a, b, n=name: getattr(torch, n)(a, b).double(), grads=False)
    case(f"{name}_scalar", name + "_scalar", {"c": 3.0}, [ca], lambda a, n=name: getattr(torch, n)(a, 3.0).double(), grads=False)

# where_ and masked_fill (the mask is not differentiable)
mask = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
case("where_same", "where_", {}, [mask, rnd(S), rnd(S)], lambda m, a, b: torch.where(m != 0, a, b), diff=[False, True, True])
case("where_bcast", "where_", {}, [torch.tensor([[1.0], [0.0], [1.0]]), rnd([4]), rnd([3, 1])],
     lambda m, a, b: torch.where(m != 0, a, b), diff=[False, True, True])
case("where_inf_other_branch", "where_", {}, [torch.tensor([1.0, 0.0, 1.0]), torch.tensor([1.0, INF, -2.0]), torch.tensor([NAN, 3.0, -INF])],
     lambda m, a, b: torch.where(m != 0, a, b), diff=[False, True, True], f32=True)
case("masked_fill", "masked_fill", {"value": -7.5}, [rnd(S), mask], lambda x, m: x.masked_fill(m != 0, -7.5), diff=[True, False])
case("masked_fill_bcast", "masked_fill", {"value": 2.0}, [rnd([2, 3, 4]), torch.tensor([1.0, 0.0, 0.0, 1.0])],
     lambda x, m: x.masked_fill(m != 0, 2.0), diff=[True, False])
case("masked_fill_neg_inf", "masked_fill", {"value": -INF}, [rnd(S), mask], lambda x, m: x.masked_fill(m != 0, -INF), diff=[True, False])

# ---------------------------------------------------------------- reductions
X3 = [2, 3, 4]
for dims in [[0], [1], [-1], [0, 2], [2, 0], [0, 1, 2]]:
    for keep in [False, True]:
        tag = "_".join(str(d) for d in dims).replace("-", "m") + ("_keep" if keep else "")
        case(f"sum_{tag}", "sum", {"dims": dims, "keepdim": keep}, [rnd(X3)], lambda x, d=dims, k=keep: x.sum(d, keepdim=k))
        case(f"mean_{tag}", "mean", {"dims": dims, "keepdim": keep}, [rnd(X3)], lambda x, d=dims, k=keep: x.mean(d, keepdim=k))
        case(f"logsumexp_{tag}", "logsumexp", {"dims": dims, "keepdim": keep}, [rnd(X3)], lambda x, d=dims, k=keep: torch.logsumexp(x, d, keepdim=k))
        case(f"amax_{tag}", "amax", {"dims": dims, "keepdim": keep}, [rnd(X3)], lambda x, d=dims, k=keep: x.amax(d, keepdim=k))
        case(f"amin_{tag}", "amin", {"dims": dims, "keepdim": keep}, [rnd(X3)], lambda x, d=dims, k=keep: x.amin(d, keepdim=k))
for dims, corr, keep in [([1], 1, False), ([0, 2], 0, True), ([-1], 1, True), ([0, 1, 2], 1, False), ([2], 2, False)]:
    tag = "_".join(str(d) for d in dims).replace("-", "m")
    case(f"var_{tag}_c{corr}{'_keep' if keep else ''}", "var", {"dims": dims, "correction": corr, "keepdim": keep}, [rnd(X3)],
         lambda x, d=dims, c=corr, k=keep: x.var(d, correction=c, keepdim=k))
case("sum_all", "sum_all", {}, [rnd(X3)], lambda x: x.sum())
case("mean_all", "mean_all", {}, [rnd(X3)], lambda x: x.mean())
case("max_all", "max_all", {}, [rnd(X3)], lambda x: x.amax())
# amax ties split the gradient; logsumexp with -inf entries and a +inf entry
tie = torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 5.0, 4.0, 5.0]])
case("amax_ties", "amax", {"dims": [1], "keepdim": False}, [tie], lambda x: x.amax(1))
case("amin_ties", "amin", {"dims": [0], "keepdim": True}, [tie], lambda x: x.amin(0, keepdim=True))
case("max_all_ties", "max_all", {}, [tie], lambda x: x.amax())
neg = torch.tensor([[-INF, 0.5, -INF], [1.0, -INF, 2.0]])
case("logsumexp_some_neg_inf", "logsumexp", {"dims": [1], "keepdim": False}, [neg], lambda x: torch.logsumexp(x, 1))
case("logsumexp_pos_inf", "logsumexp", {"dims": [0], "keepdim": False}, [torch.tensor([INF, 1.0])], lambda x: torch.logsumexp(x, 0), grads=False)
case("logsumexp_large", "logsumexp", {"dims": [0], "keepdim": False}, [torch.tensor([1000.0, 1000.0, -1000.0])], lambda x: torch.logsumexp(x, 0))

# max_dim / min_dim: values, indices, gradient to the chosen index (ties: first index)
for dim, keep in [(0, False), (1, True), (-1, False), (2, True)]:
    case(f"max_dim_{dim}{'_keep' if keep else ''}".replace("-", "m"), "max_dim", {"dim": dim, "keepdim": keep}, [rnd(X3)],
         lambda x, d=dim, k=keep: torch.max(x, d, keepdim=k), tuple_out=True)
    case(f"min_dim_{dim}{'_keep' if keep else ''}".replace("-", "m"), "min_dim", {"dim": dim, "keepdim": keep}, [rnd(X3)],
         lambda x, d=dim, k=keep: torch.min(x, d, keepdim=k), tuple_out=True)
for dim in [0, 1, -1]:
    case(f"argmax_{dim}".replace("-", "m"), "argmax", {"dim": dim, "keepdim": False}, [tie],
         lambda x, d=dim: (x.amax(d), torch.argmax(x, d)), tuple_out=True, grads=False)
    case(f"argmin_{dim}".replace("-", "m"), "argmin", {"dim": dim, "keepdim": False}, [tie],
         lambda x, d=dim: (x.amin(d), torch.argmin(x, d)), tuple_out=True, grads=False)

# softmax / log_softmax along several dims, incl. -inf entries (not whole rows)
for dim in [0, 1, -1]:
    case(f"softmax_{dim}".replace("-", "m"), "softmax", {"dim": dim}, [rnd(X3, lo=-3, hi=3)], lambda x, d=dim: x.softmax(d))
    case(f"log_softmax_{dim}".replace("-", "m"), "log_softmax", {"dim": dim}, [rnd(X3, lo=-3, hi=3)], lambda x, d=dim: x.log_softmax(d))
case("softmax_some_neg_inf", "softmax", {"dim": 1}, [neg], lambda x: x.softmax(1))
case("log_softmax_some_neg_inf", "log_softmax", {"dim": 1}, [neg], lambda x: x.log_softmax(1), hvp=False)
case("softmax_large", "softmax", {"dim": 0}, [torch.tensor([1000.0, 999.0, -1000.0])], lambda x: x.softmax(0))

# cumsum forward and reversed on several dims
for dim in [0, 1, 2, -1]:
    for rev in [False, True]:
        tag = f"{dim}".replace("-", "m") + ("_rev" if rev else "")
        ref = (lambda x, d=dim: x.flip(d).cumsum(d).flip(d)) if rev else (lambda x, d=dim: x.cumsum(d))
        case(f"cumsum_{tag}", "cumsum", {"dim": dim, "reverse": rev}, [rnd(X3)], ref)

# ---------------------------------------------------------------- shape ops (values + adjoints)
case("permute", "permute", {"perm": [2, 0, 1]}, [rnd(X3)], lambda x: x.permute(2, 0, 1))
case("transpose", "transpose", {"a": 0, "b": -1}, [rnd(X3)], lambda x: x.transpose(0, -1))
case("reshape", "reshape", {"shape": [4, 6]}, [rnd(X3)], lambda x: x.reshape(4, 6))
case("reshape_of_permuted", "reshape", {"shape": [12, 2], "permute_first": [2, 1, 0]}, [rnd(X3)], lambda x: x.permute(2, 1, 0).reshape(12, 2))
case("narrow", "narrow", {"dim": 2, "start": 1, "len": 2}, [rnd(X3)], lambda x: x.narrow(2, 1, 2))
case("slice_step", "slice", {"dim": 2, "start": 0, "end": 4, "step": 3}, [rnd(X3)], lambda x: x[:, :, 0:4:3])
case("diagonal", "diagonal", {"dims": [1, 2]}, [rnd([2, 3, 3])], lambda x: torch.diagonal(x, 0, 1, 2))
case("unfold", "unfold", {"dim": 1, "size": 3, "step": 2}, [rnd([2, 7])], lambda x: x.unfold(1, 3, 2))
case("unfold_overlap", "unfold", {"dim": 0, "size": 2, "step": 1}, [rnd([5])], lambda x: x.unfold(0, 2, 1))
case("flip", "flip", {"dims": [0, 2]}, [rnd(X3)], lambda x: x.flip(0, 2))
case("broadcast_to", "broadcast_to", {"shape": [2, 3, 4]}, [rnd([3, 1])], lambda x: x.expand(2, 3, 4))
case("unsqueeze", "unsqueeze", {"dim": 1}, [rnd([3, 4])], lambda x: x.unsqueeze(1))
case("squeeze", "squeeze", {"dim": 1}, [rnd([3, 1, 4])], lambda x: x.squeeze(1))
case("squeeze_all", "squeeze", {}, [rnd([1, 3, 1])], lambda x: x.squeeze())

# ---------------------------------------------------------------- IEEE semantics (f64 and f32)
sp = torch.tensor([-INF, -1000.0, -30.0, 0.0, 30.0, 1000.0, INF])
case("ieee_exp", "exp", {}, [sp], torch.exp, hvp=False)
case("ieee_sigmoid", "sigmoid", {}, [sp], torch.sigmoid)
case("ieee_logsigmoid", "logsigmoid", {}, [sp], F.logsigmoid, hvp=False)
case("ieee_softplus", "softplus", {}, [torch.tensor([-INF, -1000.0, -30.0, 0.0, 15.0, 1000.0, INF])], F.softplus, hvp=False)
case("ieee_tanh", "tanh", {}, [sp], torch.tanh)
case("ieee_log", "log", {}, [torch.tensor([0.0, -1.0, INF, 1.0])], torch.log, grads=False)
case("ieee_sqrt", "sqrt", {}, [torch.tensor([0.0, -1.0, INF, 4.0])], torch.sqrt, grads=False)
case("ieee_add", "add", {}, [torch.tensor([INF, INF, -INF, NAN, 1.0]), torch.tensor([-INF, INF, -INF, 1.0, -INF])], torch.add)
case("ieee_sub", "sub", {}, [torch.tensor([INF, INF, 1.0]), torch.tensor([INF, -INF, INF])], torch.sub, hvp=False)
case("ieee_mul", "mul", {}, [torch.tensor([INF, 0.0, -INF]), torch.tensor([0.0, 2.0, 3.0])], torch.mul, grads=False)
case("ieee_div", "div", {}, [torch.tensor([1.0, -1.0, 0.0, INF]), torch.tensor([0.0, 0.0, 0.0, INF])], torch.div, grads=False)
case("ieee_maximum_nan", "maximum", {}, [torch.tensor([NAN, 1.0, -INF]), torch.tensor([1.0, NAN, 2.0])], torch.maximum, grads=False)
case("ieee_relu", "relu", {}, [torch.tensor([-INF, -0.0, 0.0, INF])], F.relu, hvp=False)
case("ieee_erf", "erf", {}, [torch.tensor([-INF, -10.0, 0.0, 10.0, INF])], torch.erf, hvp=False)
case("ieee_gelu", "gelu", {}, [torch.tensor([-1000.0, -10.0, 0.0, 10.0, 1000.0])], F.gelu, hvp=False)
case("ieee_silu", "silu", {}, [torch.tensor([-1000.0, -10.0, 0.0, 10.0, 1000.0])], F.silu, hvp=False)
# kinks, torch conventions: relu'(0) = 0, abs'(0) = 0, clamp passes at the bounds
case("kink_relu", "relu", {}, [torch.tensor([-1.0, 0.0, 2.0])], F.relu)
case("kink_abs", "abs", {}, [torch.tensor([-1.0, 0.0, 2.0])], torch.abs)
case("kink_clamp", "clamp", {"min": 0.0, "max": 1.0}, [torch.tensor([-1.0, 0.0, 0.5, 1.0, 2.0])], lambda x: x.clamp(0.0, 1.0))

# ---------------------------------------------------------------- Display and constructors
ctor = []
for start, end, step in [(0, 5, 1), (0, 1, 0.25), (0, 0.3, 0.1), (5, 0, -1.5), (-1, 1, 0.5), (1, 1, 1),
                         (1, 0, -0.1), (0, 0.9, 0.3), (0, 1.1, 0.1), (-3, 3, 0.7), (0, 1, 0.1)]:
    ctor.append({"kind": "arange", "args": [start, end, step], "data": exact(torch.arange(start, end, step, dtype=torch.float64))})
for start, end, steps in [(0, 1, 5), (-1, 2, 4), (3, 3, 1), (0, 1, 0), (1, -1, 3), (0, 1, 7), (-2.5, 7.25, 11)]:
    ctor.append({"kind": "linspace", "args": [start, end, steps], "data": exact(torch.linspace(start, end, steps))})
for n in [0, 1, 3]:
    ctor.append({"kind": "eye", "args": [n], "data": exact(torch.eye(n))})

golden = {"cases": CASES, "constructors": ctor, "torch": torch.__version__}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "ops.json")
with open(path, "w") as f:
    json.dump(golden, f, separators=(",", ":"), allow_nan=False)
print(f"wrote {len(CASES)} cases, {os.path.getsize(path)} bytes to {os.path.normpath(path)}")
