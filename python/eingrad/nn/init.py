"""``eingrad.nn.init``: ``torch.nn.init``'s initialisers, each overwriting a tensor in place
(no autograd record) and returning it. Random ones draw from the global generator that
``eingrad.manual_seed`` seeds.

>>> import eingrad
>>> w = eingrad.zeros(3, 4)
>>> _ = eingrad.nn.init.constant_(w, 0.5); w.tolist()[0]
[0.5, 0.5, 0.5, 0.5]
"""

import math

from .. import _eingrad

__all__ = [
    "calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "xavier_uniform_",
    "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_",
]


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (``torch.nn.init.calculate_gain``).

    >>> import eingrad
    >>> eingrad.nn.init.calculate_gain("tanh")
    1.6666666666666667
    """
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    if tensor.ndim < 2:
        raise ValueError(
            "fan in and fan out can not be computed for a tensor with fewer than 2 dimensions "
            f"(shape {tuple(tensor.shape)})")
    return _eingrad._nn_init_fans(tensor)


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fills ``tensor`` with samples from U(a, b).

    >>> import eingrad
    >>> w = eingrad.nn.init.uniform_(eingrad.zeros(100), -1, 1)
    >>> -1 <= min(w.tolist()) and max(w.tolist()) <= 1
    True
    """
    _eingrad._nn_init_uniform_(tensor, float(a), float(b))
    return tensor


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fills ``tensor`` with samples from N(mean, std²).

    >>> import eingrad
    >>> eingrad.nn.init.normal_(eingrad.zeros(2, 2)).shape
    (2, 2)
    """
    _eingrad._nn_init_normal_(tensor, float(mean), float(std))
    return tensor


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fills ``tensor`` with N(mean, std²) samples redrawn until they lie in [a, b].

    >>> import eingrad
    >>> w = eingrad.nn.init.trunc_normal_(eingrad.zeros(1000), std=1.0, a=-1.0, b=1.0)
    >>> -1 <= min(w.tolist()) and max(w.tolist()) <= 1
    True
    """
    import numpy as np
    if not a < b:
        raise ValueError(f"trunc_normal_: need a < b, got a={a}, b={b}")
    n = tensor.numel()
    out = np.empty(0)
    draw = _eingrad.zeros(max(2 * n, 16), dtype=_eingrad.float64)
    for _ in range(100):
        normal_(draw, mean, std)
        v = draw.numpy()
        out = np.concatenate([out, v[(v >= a) & (v <= b)]])
        if out.size >= n:
            break
    else:
        raise ValueError(f"trunc_normal_: [a, b] = [{a}, {b}] holds too little of N({mean}, {std}²)")
    values = _eingrad.tensor(out[:n].reshape(tuple(tensor.shape)), dtype=tensor.dtype)
    _eingrad._nn_copy_(tensor, values, "trunc_normal_")
    return tensor


def constant_(tensor, val):
    """Fills ``tensor`` with ``val``.

    >>> import eingrad
    >>> eingrad.nn.init.constant_(eingrad.zeros(2), 3.0).tolist()
    [3.0, 3.0]
    """
    _eingrad._nn_init_constant_(tensor, float(val))
    return tensor


def zeros_(tensor):
    """Fills ``tensor`` with zeros.

    >>> import eingrad
    >>> eingrad.nn.init.zeros_(eingrad.ones(2)).tolist()
    [0.0, 0.0]
    """
    return constant_(tensor, 0.0)


def ones_(tensor):
    """Fills ``tensor`` with ones.

    >>> import eingrad
    >>> eingrad.nn.init.ones_(eingrad.zeros(2)).tolist()
    [1.0, 1.0]
    """
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Glorot uniform: U(−b, b) with ``b = gain·sqrt(6 / (fan_in + fan_out))``.

    >>> import eingrad
    >>> w = eingrad.nn.init.xavier_uniform_(eingrad.zeros(3, 3))
    >>> max(abs(v) for row in w.tolist() for v in row) <= 1.0
    True
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Glorot normal: N(0, std²) with ``std = gain·sqrt(2 / (fan_in + fan_out))``.

    >>> import eingrad
    >>> eingrad.nn.init.xavier_normal_(eingrad.zeros(3, 3)).shape
    (3, 3)
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He uniform: U(−b, b) with ``b = gain·sqrt(3 / fan)``. ``nn.Linear`` uses ``a=sqrt(5)``.

    >>> import eingrad, math
    >>> w = eingrad.nn.init.kaiming_uniform_(eingrad.zeros(4, 9), a=math.sqrt(5))
    >>> max(abs(v) for row in w.tolist() for v in row) <= 1 / 3
    True
    """
    fan = _fan(tensor, mode)
    if fan == 0:
        return tensor
    gain = calculate_gain(nonlinearity, a)
    bound = math.sqrt(3.0) * gain / math.sqrt(fan)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He normal: N(0, std²) with ``std = gain / sqrt(fan)``.

    >>> import eingrad
    >>> eingrad.nn.init.kaiming_normal_(eingrad.zeros(4, 9)).shape
    (4, 9)
    """
    fan = _fan(tensor, mode)
    if fan == 0:
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std)
