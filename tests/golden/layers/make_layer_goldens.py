"""PyTorch goldens for eingrad's nn layers (tests/layer_goldens.rs reads the output; the
tests never run Python).

For each case: the layer's parameters under eingrad's names (PyTorch's too), an input `x`, a
cotangent `r`, the output `y` and the gradients of `sum(y * r)` with respect to `x` and
every parameter (`grad.<name>`), all f32, in one safetensors file.

Run from the repository root:  ../ref-venv/bin/python tests/golden/layers/make_layer_goldens.py
(torch 2.15, safetensors; the weights are PyTorch's default init under manual_seed(0)).
"""

import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
OUT = {}


def attention(x, c_attn, c_proj, n_head, key_padding_mask=None):
    """nanoGPT's CausalSelfAttention (no dropout), with a key-padding mask and a softmax that
    gives zero rows where every key is masked (eingrad's semantics; PyTorch's gives NaN)."""
    B, T, C = x.shape
    q, k, v = c_attn(x).split(C, dim=2)
    q = q.view(B, T, n_head, C // n_head).transpose(1, 2)
    k = k.view(B, T, n_head, C // n_head).transpose(1, 2)
    v = v.view(B, T, n_head, C // n_head).transpose(1, 2)
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
    mask = torch.ones(T, T, dtype=torch.bool).triu(1).view(1, 1, T, T)
    if key_padding_mask is not None:
        mask = mask | key_padding_mask.bool().view(B, 1, 1, T)
    att = att.masked_fill(mask, float("-inf"))
    att = torch.nan_to_num(F.softmax(att, dim=-1), nan=0.0)
    y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
    return c_proj(y)


class Attn(torch.nn.Module):
    def __init__(self, C, H, bias=True):
        super().__init__()
        self.c_attn = torch.nn.Linear(C, 3 * C, bias=bias)
        self.c_proj = torch.nn.Linear(C, C, bias=bias)
        self.n_head = H

    def forward(self, x, pad=None):
        return attention(x, self.c_attn, self.c_proj, self.n_head, pad)


class Mlp(torch.nn.Module):
    def __init__(self, C, bias=True):
        super().__init__()
        self.c_fc = torch.nn.Linear(C, 4 * C, bias=bias)
        self.c_proj = torch.nn.Linear(4 * C, C, bias=bias)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(torch.nn.Module):
    def __init__(self, C, H, bias=True):
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(C, bias=bias)
        self.attn = Attn(C, H, bias)
        self.ln_2 = torch.nn.LayerNorm(C, bias=bias)
        self.mlp = Mlp(C, bias)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


def randomize(module):
    """Norm weights start at 1 and biases at 0; move them so the goldens test them."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("weight") and p.dim() == 1 or name.endswith("bias"):
                p.add_(0.3 * torch.randn_like(p))


def case(key, module, x, *extra, ids=None):
    randomize(module)
    x = x.clone().requires_grad_(ids is None)
    y = module(x, *extra) if ids is None else module(ids)
    r = torch.randn_like(y)
    (y * r).sum().backward()
    OUT[f"{key}.x"] = x.detach()
    OUT[f"{key}.r"] = r
    OUT[f"{key}.y"] = y.detach()
    if ids is None:
        OUT[f"{key}.grad.x"] = x.grad
    for name, p in module.named_parameters():
        OUT[f"{key}.{name}"] = p.detach()
        OUT[f"{key}.grad.{name}"] = p.grad
    for e in extra:
        OUT[f"{key}.mask"] = e
    assert all(torch.isfinite(t).all() for t in OUT.values() if t.is_floating_point())


B, T, C, H = 2, 5, 16, 4
case("layer_norm", torch.nn.LayerNorm(C), torch.randn(B, T, C))
case("layer_norm_no_bias", torch.nn.LayerNorm(C, bias=False), torch.randn(B, T, C))
case("rms_norm", torch.nn.RMSNorm(C, eps=1e-6), torch.randn(B, T, C))
case("attention", Attn(C, H), torch.randn(B, T, C))
# batch 0: keys 0 and 1 padded, so queries 0 and 1 see nothing; batch 1: key 4 padded.
pad = torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]])
case("attention_padded", Attn(C, H), torch.randn(B, T, C), pad)
case("block", Block(C, H), torch.randn(B, T, C))
case("block_no_bias", Block(C, H, bias=False), torch.randn(B, T, C))
conv = torch.nn.Conv1d(6, 4, 3, dilation=2, groups=2)


class CausalConv(torch.nn.Module):
    def __init__(self, conv):
        super().__init__()
        self.weight, self.bias, self.conv = conv.weight, conv.bias, conv

    def forward(self, x):
        left = self.conv.dilation[0] * (self.conv.kernel_size[0] - 1)
        return F.conv1d(F.pad(x, (left, 0)), self.weight, self.bias,
                        dilation=self.conv.dilation, groups=self.conv.groups)

    def named_parameters(self, *a, **k):
        return [("weight", self.weight), ("bias", self.bias)]


case("conv1d_causal", CausalConv(conv), torch.randn(B, 6, 9))
ids = torch.tensor([[3, 0, 7, 3], [9, 9, 1, 0]])
OUT["embedding.ids"] = ids.to(torch.float32)
case("embedding", torch.nn.Embedding(10, C), torch.zeros(1), ids=ids)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layers.safetensors")
save_file({k: v.contiguous() for k, v in OUT.items()}, path, metadata={"made_by": "make_layer_goldens.py", "torch": torch.__version__})
print(f"wrote {len(OUT)} tensors to {path}")
