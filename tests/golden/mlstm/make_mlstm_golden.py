"""Golden values for eingrad's xLSTM mLSTM layer (tests/mlstm_layer.rs).

An independent PyTorch implementation of the layer of SEEDS.md §1 (xLSTM's mLSTM layer:
up-projection, causal depthwise conv + SiLU, head-wise q/k/v, gates on concat(q, k, v), the
parallel stabilised mLSTM on the log-space decay matrix, per-head group norm with xLSTM's
residual weight (scale = 1 + weight), learnable skip, SiLU output gate, down-projection),
with fixed-seed random weights stored in float32 under eingrad's (= xLSTM's) parameter names.

The reference is evaluated in float64 from those float32 values (so the stored expectations
carry only float32 storage rounding) and saved as float32:

    golden.input        x (B=2, S=8, E=16)
    golden.cotangent    R, the loss is sum(y * R)
    golden.output       y
    golden.input_grad   dloss/dx
    golden.grad.<name>  dloss/d<name> for every parameter <name>

Run:  /work/ref-venv/bin/python tests/golden/mlstm/make_mlstm_golden.py
"""

import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

B, S, E, NH = 2, 8, 16, 2
PROJ_FACTOR, ROUND_TO = 2.0, 64
KERNEL, BLOCK = 4, 4
NORM_EPS, MLSTM_EPS = 1e-5, 1e-6
INNER = int(math.ceil(PROJ_FACTOR * E / ROUND_TO) * ROUND_TO)  # 64
DH = INNER // NH


def parameters(gen):
    """Random float32 parameters, in eingrad's named_parameters order."""

    def normal(shape, std, mean=0.0):
        return (mean + std * torch.randn(shape, generator=gen, dtype=torch.float64)).float()

    def uniform(shape, bound):
        return ((2 * torch.rand(shape, generator=gen, dtype=torch.float64) - 1) * bound).float()

    nb = INNER // BLOCK
    return {
        "proj_up.weight": normal((2 * INNER, E), math.sqrt(2 / (5 * E))),
        "q_proj.weight": normal((nb, BLOCK, BLOCK), 0.5),
        "k_proj.weight": normal((nb, BLOCK, BLOCK), 0.5),
        "v_proj.weight": normal((nb, BLOCK, BLOCK), 0.5),
        "conv1d.conv.weight": uniform((INNER, 1, KERNEL), 0.5),
        "conv1d.conv.bias": uniform((INNER,), 0.5),
        "mlstm_cell.igate.weight": normal((NH, 3 * INNER), 0.1),
        "mlstm_cell.igate.bias": normal((NH,), 1.0),
        "mlstm_cell.fgate.weight": normal((NH, 3 * INNER), 0.1),
        "mlstm_cell.fgate.bias": torch.linspace(3.0, 6.0, NH, dtype=torch.float32),
        "mlstm_cell.outnorm.weight": normal((INNER,), 0.2),
        "learnable_skip": normal((INNER,), 0.2, mean=1.0),
        "proj_down.weight": normal((E, INNER), 0.2),
    }


def mlstm_parallel(q, k, v, igate, fgate):
    """SEEDS.md §1: h from q, k, v (B, NH, S, DH) and gate pre-activations (B, NH, S, 1)."""
    s, dh = q.shape[2], q.shape[3]
    cum = torch.cumsum(F.logsigmoid(fgate), dim=2)  # L_i = sum_{t<=i} log sigmoid(f_t)
    lower = torch.tril(torch.ones(s, s, dtype=torch.bool))
    dmat = torch.where(lower, cum - cum.transpose(-2, -1), float("-inf"))
    dmat = dmat + igate.transpose(-2, -1)
    m = dmat.amax(dim=-1, keepdim=True)
    c = (q @ k.transpose(-2, -1) / math.sqrt(dh)) * torch.exp(dmat - m)
    n = torch.maximum(c.sum(dim=-1, keepdim=True).abs(), torch.exp(-m))
    return (c @ v) / (n + MLSTM_EPS)


def layer(p, x):
    b, s, _ = x.shape
    up = x @ p["proj_up.weight"].T
    xm, z = up[..., :INNER], up[..., INNER:]
    # causal depthwise conv: KERNEL - 1 zeros on the left of the time axis
    xc = F.conv1d(
        F.pad(xm.transpose(1, 2), (KERNEL - 1, 0)),
        p["conv1d.conv.weight"],
        p["conv1d.conv.bias"],
        groups=INNER,
    ).transpose(1, 2)
    xc = F.silu(xc)

    def headwise(t, w):
        nb = w.shape[0]
        return torch.einsum("bsni,noi->bsno", t.reshape(b, s, nb, BLOCK), w).reshape(b, s, INNER)

    q = headwise(xc, p["q_proj.weight"])
    k = headwise(xc, p["k_proj.weight"])
    v = headwise(xm, p["v_proj.weight"])
    gin = torch.cat([q, k, v], dim=-1)

    def gate(name):
        g = gin @ p[f"mlstm_cell.{name}.weight"].T + p[f"mlstm_cell.{name}.bias"]
        return g.transpose(1, 2).unsqueeze(-1)  # (B, NH, S, 1)

    def heads(t):
        return t.view(b, s, NH, DH).transpose(1, 2)

    h = mlstm_parallel(heads(q), heads(k), heads(v), gate("igate"), gate("fgate"))
    h = F.group_norm(
        h.transpose(1, 2).reshape(b * s, INNER),
        NH,
        weight=1.0 + p["mlstm_cell.outnorm.weight"],
        eps=NORM_EPS,
    ).view(b, s, INNER)
    h = (h + p["learnable_skip"] * xc) * F.silu(z)
    return h @ p["proj_down.weight"].T


def main():
    gen = torch.Generator().manual_seed(20240512)
    params32 = parameters(gen)
    x32 = torch.randn((B, S, E), generator=gen, dtype=torch.float64).float()
    r32 = torch.randn((B, S, E), generator=gen, dtype=torch.float64).float()

    params = {n: t.double().requires_grad_(True) for n, t in params32.items()}
    x = x32.double().requires_grad_(True)
    y = layer(params, x)
    (y * r32.double()).sum().backward()

    out = dict(params32)
    out["golden.input"] = x32
    out["golden.cotangent"] = r32
    out["golden.output"] = y.detach().float()
    out["golden.input_grad"] = x.grad.float()
    for n, t in params.items():
        out[f"golden.grad.{n}"] = t.grad.float()
    out = {n: t.contiguous() for n, t in out.items()}
    meta = {
        "embedding_dim": str(E),
        "num_heads": str(NH),
        "proj_factor": str(PROJ_FACTOR),
        "round_proj_up_to_multiple_of": str(ROUND_TO),
        "conv_kernel": str(KERNEL),
        "qkv_proj_blocksize": str(BLOCK),
        "bias": "false",
        "conv_bias": "true",
        "norm_eps": str(NORM_EPS),
        "torch": torch.__version__,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mlstm_layer.safetensors")
    save_file(out, path, metadata=meta)
    print(f"wrote {path}: {len(out)} tensors, {os.path.getsize(path)} bytes")
    print("y[0, :2, :4] =", y[0, :2, :4].tolist())


if __name__ == "__main__":
    main()
