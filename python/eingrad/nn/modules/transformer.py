"""The transformer pieces, with nanoGPT's names: ``CausalSelfAttention``, ``MLP`` and
``Block``."""

from .. import functional as F
from .activation import GELU
from .dropout import Dropout
from .linear import Linear
from .module import Module
from .normalization import LayerNorm

__all__ = ["CausalSelfAttention", "MLP", "Block"]


class CausalSelfAttention(Module):
    """nanoGPT's causal multi-head self-attention over ``(B, T, C)``: ``c_attn`` (C → 3C,
    q/k/v), a causal softmax(q·kᵀ/√d), ``c_proj`` (C → C), dropout on the attention weights
    and the output in training mode.

    >>> import eingrad
    >>> attn = eingrad.nn.CausalSelfAttention(8, 2)
    >>> attn(eingrad.randn(2, 5, 8)).shape, [n for n, _ in attn.named_parameters()][0]
    ((2, 5, 8), 'c_attn.weight')
    """

    def __init__(self, n_embd, n_head, bias=True, dropout=0.0, dtype=None):
        super().__init__()
        if n_head < 1 or n_embd % n_head:
            raise ValueError(f"CausalSelfAttention: n_head={n_head} must be ≥ 1 and divide "
                             f"n_embd={n_embd}")
        self.c_attn = Linear(n_embd, 3 * n_embd, bias=bias, dtype=dtype)
        self.c_proj = Linear(n_embd, n_embd, bias=bias, dtype=dtype)
        self.n_head, self.n_embd, self.dropout = n_head, n_embd, dropout

    def forward(self, x):
        return F.scaled_causal_self_attention(x, self.c_attn.weight, self.c_attn.bias,
                                              self.c_proj.weight, self.c_proj.bias,
                                              self.n_head, self.dropout, self.training)

    def extra_repr(self):
        return f"n_embd={self.n_embd}, n_head={self.n_head}, dropout={self.dropout}"


class MLP(Module):
    """nanoGPT's feed-forward block: ``c_fc`` (C → 4C), GELU, ``c_proj`` (4C → C), dropout.

    >>> import eingrad
    >>> eingrad.nn.MLP(8)(eingrad.ones(1, 3, 8)).shape
    (1, 3, 8)
    """

    def __init__(self, n_embd, bias=True, dropout=0.0, dtype=None):
        super().__init__()
        self.c_fc = Linear(n_embd, 4 * n_embd, bias=bias, dtype=dtype)
        self.gelu = GELU()
        self.c_proj = Linear(4 * n_embd, n_embd, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(Module):
    """nanoGPT's pre-LayerNorm transformer block: ``x + attn(ln_1(x))``, then ``x +
    mlp(ln_2(x))``.

    >>> import eingrad
    >>> blk = eingrad.nn.Block(8, 2)
    >>> blk(eingrad.randn(1, 4, 8)).shape, len(list(blk.parameters()))
    ((1, 4, 8), 12)
    """

    def __init__(self, n_embd, n_head, bias=True, dropout=0.0, dtype=None):
        super().__init__()
        self.ln_1 = LayerNorm(n_embd, bias=bias, dtype=dtype)
        self.attn = CausalSelfAttention(n_embd, n_head, bias=bias, dropout=dropout, dtype=dtype)
        self.ln_2 = LayerNorm(n_embd, bias=bias, dtype=dtype)
        self.mlp = MLP(n_embd, bias=bias, dropout=dropout, dtype=dtype)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))
