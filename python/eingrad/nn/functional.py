"""``eingrad.nn.functional`` (import as ``F``): the functional form of the layers,
activations and losses, with ``torch.nn.functional``'s names and signatures.

Each function is one native call into the Rust library and is differentiable to any order.

>>> import eingrad
>>> import eingrad.nn.functional as F
>>> F.relu(eingrad.tensor([-1.0, 2.0]))
tensor([0., 2.])
"""

from .. import _eingrad

__all__ = [
    "linear", "conv1d", "pad", "relu", "relu_", "gelu", "silu", "sigmoid", "tanh", "softplus",
    "logsigmoid", "leaky_relu", "elu", "softmax", "log_softmax", "dropout", "layer_norm",
    "rms_norm", "embedding", "mse_loss", "cross_entropy", "nll_loss",
    "binary_cross_entropy_with_logits", "scaled_causal_self_attention", "one_hot",
]


def _reduction(size_average, reduce, reduction):
    """PyTorch's legacy ``size_average``/``reduce`` arguments folded into ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _unsupported(name, value, what):
    if value is not None:
        raise ValueError(f"{name}: {what} is not supported by eingrad (got {value!r})")


def _inplace(input, out, inplace):
    if inplace:
        _eingrad._nn_rebind(input, out)
        return input
    return out


def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` over any leading dims.

    >>> import eingrad, eingrad.nn.functional as F
    >>> F.linear(eingrad.ones(2, 3), eingrad.ones(4, 3)).shape
    (2, 4)
    """
    return _eingrad._nn_linear(input, weight, bias)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d convolution (cross-correlation) of ``input`` ``(N, C_in, L)`` or ``(C_in, L)``
    with ``weight`` ``(C_out, C_in / groups, k)``. ``padding`` is an int, a ``(left,
    right)`` pair, ``'valid'``, ``'same'`` or ``'causal'`` (``dilation·(k−1)`` zeros on the
    left only: output ``t`` sees inputs ``≤ t``).

    >>> import eingrad, eingrad.nn.functional as F
    >>> F.conv1d(eingrad.ones(1, 1, 5), eingrad.ones(1, 1, 3)).tolist()
    [[[3.0, 3.0, 3.0]]]
    """
    if input.ndim == 2:  # unbatched (C_in, L), as torch
        return conv1d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    return _eingrad.conv1d(input, weight, bias, stride, padding, dilation, groups)


def pad(input, pad, mode="constant", value=None):
    """Pads with ``value`` (0 by default): ``pad = (left, right)`` for the last dim, then
    ``(top, bottom)`` for the one before, ...; negative amounts crop. Only ``mode='constant'``.

    >>> import eingrad, eingrad.nn.functional as F
    >>> F.pad(eingrad.ones(2), (1, 2)).tolist()
    [0.0, 1.0, 1.0, 0.0, 0.0]
    """
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got mode={mode!r}")
    return _eingrad.pad(input, tuple(pad), "constant", 0.0 if value is None else float(value))


def relu(input, inplace=False):
    """``max(input, 0)``.

    >>> import eingrad, eingrad.nn.functional as F
    >>> F.relu(eingrad.tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    return _inplace(input, _eingrad._nn_activation(input, "relu"), inplace)


def relu_(input):
    """In-place ``relu`` (the tensor object now holds the result).

    >>> import eingrad, eingrad.nn.functional as F
    >>> x = eingrad.tensor([-1.0, 2.0]); _ = F.relu_(x); x.tolist()
    [0.0, 2.0]
    """
    return relu(input, inplace=True)


def gelu(input, approximate="none"):
    """GELU: ``x·Φ(x)`` (``approximate='tanh'``: GPT-2's tanh form).

    >>> import eingrad, eingrad.nn.functional as F
    >>> round(F.gelu(eingrad.tensor(1.0)).item(), 4)
    0.8413
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _eingrad._nn_activation(input, "gelu" if approximate == "none" else "gelu_tanh")


def silu(input, inplace=False):
    """``x·σ(x)``.

    >>> import eingrad, eingrad.nn.functional as F
    >>> F.silu(eingrad.tensor(0.0)).item()
    0.0
    """
    return _inplace(input, _eingrad._nn_activation(input, "silu"), inplace)


def sigmoid(input):
    """``1 / (1 + exp(−x))``.

    >>> import eingrad, eingrad.nn.functional as F
    >>> F.sigmoid(eingrad.tensor(0.0)).item()
    0.5
    """
    return _eingrad._nn_activation(input, "sigmoid")


def tanh(input):
    """``tanh(x)``.

    >>> import eingrad, eingrad.nn.functional as F
    >>> F.tanh(eingrad.tensor(0.0)).item()
    0.0
    """
    return _eingrad._nn_activation(input, "tanh")


def softplus(input, beta=1.0, threshold=20.0):
    """``log(1 + exp(β·x)) / β``, computed stably (``threshold`` is accepted for PyTorch
    compatibility; the stable form needs no switch to the identity).

    >>> import eingrad, eingrad.nn.functional as F
    >>> round(F.softplus(eingrad.tensor(0.0)).item(), 6)
    0.693147
    """
    if beta == 1.0:
        return _eingrad._nn_activation(input, "softplus")
    return _eingrad._nn_activation(input * float(beta), "softplus") * (1.0 / float(beta))


def logsigmoid(input):
    """``log σ(x)``, stable for large ``|x|``.

    >>> import eingrad, eingrad.nn.functional as F
    >>> F.logsigmoid(eingrad.tensor([-1000.0])).tolist()
    [-1000.0]
    """
    return _eingrad._nn_activation(input, "logsigmoid")


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """``x`` for ``x > 0``, ``negative_slope·x`` otherwise.

    >>> import eingrad, eingrad.nn.functional as F
    >>> F.leaky_relu(eingrad.tensor([-2.0, 3.0]), 0.5).tolist()
    [-1.0, 3.0]
    """
    out = _eingrad._nn_activation(input, "leaky_relu", float(negative_slope))
    return _inplace(input, out, inplace)


def elu(input, alpha=1.0, inplace=False):
    """``x`` for ``x > 0``, ``α·(exp(x) − 1)`` otherwise.

    >>> import eingrad, eingrad.nn.functional as F
    >>> F.elu(eingrad.tensor([0.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    return _inplace(input, _eingrad._nn_activation(input, "elu", float(alpha)), inplace)


def _softmax_dim(ndim):
    # PyTorch's implicit choice when dim is None (deprecated there, kept for old code).
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``exp(x) / Σ exp(x)`` along ``dim``.

    >>> import eingrad, eingrad.nn.functional as F
    >>> F.softmax(eingrad.zeros(2, 2), dim=-1).tolist()
    [[0.5, 0.5], [0.5, 0.5]]
    """
    if dtype is not None:
        input = input.to(dtype)
    if dim is None:
        dim = _softmax_dim(input.ndim)
    return _eingrad._nn_softmax(input, dim, False)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``x − logsumexp(x)`` along ``dim``.

    >>> import eingrad, eingrad.nn.functional as F
    >>> round(F.log_softmax(eingrad.zeros(2), dim=0).tolist()[0], 6)
    -0.693147
    """
    if dtype is not None:
        input = input.to(dtype)
    if dim is None:
        dim = _softmax_dim(input.ndim)
    return _eingrad._nn_softmax(input, dim, True)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zeroes each element with probability ``p`` and scales the others by ``1/(1−p)`` when
    ``training``; the mask comes from the global generator (``eingrad.manual_seed``).

    >>> import eingrad, eingrad.nn.functional as F
    >>> F.dropout(eingrad.ones(3), 0.5, training=False).tolist()
    [1.0, 1.0, 1.0]
    """
    return _inplace(input, _eingrad._nn_dropout(input, float(p), bool(training)), inplace)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalises over the trailing ``normalized_shape`` dims (biased variance), then scales
    by ``weight`` and shifts by ``bias``.

    >>> import eingrad, eingrad.nn.functional as F
    >>> F.layer_norm(eingrad.tensor([[1.0, 3.0]]), (2,), eps=0.0).tolist()
    [[-1.0, 1.0]]
    """
    return _eingrad._nn_layer_norm(input, normalized_shape, weight, bias, float(eps))


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """``x / sqrt(mean(x²) + eps) · weight`` over the trailing ``normalized_shape`` dims
    (``eps=None``: the dtype's machine epsilon).

    >>> import eingrad, eingrad.nn.functional as F
    >>> F.rms_norm(eingrad.tensor([3.0, 4.0], dtype=eingrad.float64), (2,), eps=0.0).tolist()[0] == 3 / 12.5 ** 0.5
    True
    """
    return _eingrad._nn_rms_norm(input, normalized_shape, weight, eps)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """The rows of ``weight`` at the integer ids ``input`` (a tensor, array or list):
    shape ``input.shape + (embedding_dim,)``. Rows looked up at ``padding_idx`` get no
    gradient.

    >>> import eingrad, eingrad.nn.functional as F
    >>> F.embedding([2, 0], eingrad.tensor([[0.0], [1.0], [2.0]])).tolist()
    [[2.0], [0.0]]
    """
    _unsupported("embedding", max_norm, "max_norm")
    if scale_grad_by_freq or sparse:
        raise ValueError("embedding: scale_grad_by_freq and sparse are not supported by eingrad")
    return _eingrad._nn_embedding(input, weight, padding_idx)


def one_hot(tensor, num_classes=-1):
    """A ``(*tensor.shape, num_classes)`` tensor with a 1 at each class index of ``tensor``
    (integers in a tensor, array or list) and 0 elsewhere; ``num_classes=-1`` uses the
    largest index + 1. (float32: eingrad's tensors are floating point.)

    >>> import eingrad, eingrad.nn.functional as F
    >>> F.one_hot(eingrad.tensor([2, 0]), 3).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    if num_classes == -1:
        import numpy as np
        values = np.asarray(tensor.numpy() if hasattr(tensor, "numpy") else tensor)
        if values.size == 0:
            raise ValueError("one_hot: cannot infer num_classes from an empty tensor; pass "
                             "num_classes")
        num_classes = int(values.max()) + 1
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"one_hot: num_classes must be a non-negative int or -1, got "
                         f"{num_classes!r}")
    return _eingrad._one_hot(tensor, num_classes)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error ``reduce((input − target)²)``; shapes must match.

    >>> import eingrad, eingrad.nn.functional as F
    >>> F.mse_loss(eingrad.tensor([1.0, 2.0]), eingrad.tensor([0.0, 4.0])).item()
    2.5
    """
    _unsupported("mse_loss", weight, "weight")
    return _eingrad._nn_mse_loss(input, target, _reduction(size_average, reduce, reduction))


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of logits ``input`` ``(N, C)`` (or ``(C,)``, or ``(N, C, d1, ...)``)
    against class indices ``target`` (a tensor, array or list of integers; entries equal to
    ``ignore_index`` are left out) or against class probabilities (a tensor of ``input``'s
    shape).

    >>> import eingrad, eingrad.nn.functional as F
    >>> round(F.cross_entropy(eingrad.zeros(2, 4), [0, 3]).item(), 6)
    1.386294
    """
    _unsupported("cross_entropy", weight, "weight")
    return _eingrad._nn_cross_entropy(input, target, _reduction(size_average, reduce, reduction),
                                      int(ignore_index), float(label_smoothing))


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log-likelihood ``−input[n, target[n]]`` of log-probabilities ``input``.

    >>> import eingrad, eingrad.nn.functional as F
    >>> F.nll_loss(eingrad.tensor([[-1.0, -2.0]]), [1]).item()
    2.0
    """
    _unsupported("nll_loss", weight, "weight")
    return _eingrad._nn_nll_loss(input, target, _reduction(size_average, reduce, reduction),
                                 int(ignore_index))


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """Binary cross-entropy on logits, ``softplus(x) − x·y``, computed stably.

    >>> import eingrad, eingrad.nn.functional as F
    >>> round(F.binary_cross_entropy_with_logits(eingrad.zeros(1), eingrad.ones(1)).item(), 6)
    0.693147
    """
    _unsupported("binary_cross_entropy_with_logits", weight, "weight")
    _unsupported("binary_cross_entropy_with_logits", pos_weight, "pos_weight")
    return _eingrad._nn_bce_with_logits(input, target, _reduction(size_average, reduce, reduction))


def scaled_causal_self_attention(x, c_attn_weight, c_attn_bias, c_proj_weight, c_proj_bias,
                                 n_head, dropout_p=0.0, training=False):
    """nanoGPT's causal multi-head self-attention of ``x`` ``(B, T, C)``: the fused q/k/v
    projection ``c_attn`` (C → 3C), softmax(q·kᵀ/√d) with a causal mask, the output
    projection ``c_proj`` (C → C). (The functional form of ``nn.CausalSelfAttention``.)

    >>> import eingrad, eingrad.nn.functional as F
    >>> w, p = eingrad.zeros(12, 4), eingrad.zeros(4, 4)
    >>> F.scaled_causal_self_attention(eingrad.ones(1, 3, 4), w, None, p, None, 2).shape
    (1, 3, 4)
    """
    return _eingrad._nn_causal_self_attention(x, c_attn_weight, c_attn_bias, c_proj_weight,
                                              c_proj_bias, int(n_head), float(dropout_p),
                                              bool(training))
