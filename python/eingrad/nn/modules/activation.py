"""Activations as modules: ``ReLU``, ``GELU``, ``SiLU``, ``Tanh``, ``Sigmoid``,
``Softplus``, ``LogSigmoid``, ``LeakyReLU``, ``ELU``, ``Softmax``, ``LogSoftmax``."""

from .. import functional as F
from .module import Module

__all__ = ["ReLU", "SiLU", "Tanh", "Sigmoid", "LogSigmoid", "GELU", "Softplus", "LeakyReLU", "ELU",
           "Softmax", "LogSoftmax"]


class _Activation(Module):
    _fn = None

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return type(self)._fn(input)

    def extra_repr(self):
        return "inplace=True" if getattr(self, "inplace", False) else ""


class ReLU(_Activation):
    """``max(x, 0)``.

    >>> import eingrad
    >>> eingrad.nn.ReLU()(eingrad.tensor([-1.0, 1.0])).tolist()
    [0.0, 1.0]
    """

    def forward(self, input):
        return F.relu(input, self.inplace)


class SiLU(_Activation):
    """``x·σ(x)``.

    >>> import eingrad
    >>> eingrad.nn.SiLU()(eingrad.zeros(1)).tolist()
    [0.0]
    """

    def forward(self, input):
        return F.silu(input, self.inplace)


class Tanh(_Activation):
    """``tanh(x)``.

    >>> import eingrad
    >>> eingrad.nn.Tanh()(eingrad.zeros(1)).tolist()
    [0.0]
    """

    def __init__(self):
        super().__init__()

    def forward(self, input):
        return F.tanh(input)


class Sigmoid(_Activation):
    """``σ(x)``.

    >>> import eingrad
    >>> eingrad.nn.Sigmoid()(eingrad.zeros(1)).tolist()
    [0.5]
    """

    def __init__(self):
        super().__init__()

    def forward(self, input):
        return F.sigmoid(input)


class LogSigmoid(_Activation):
    """``log σ(x)``.

    >>> import eingrad
    >>> round(eingrad.nn.LogSigmoid()(eingrad.zeros(1)).tolist()[0], 6)
    -0.693147
    """

    def __init__(self):
        super().__init__()

    def forward(self, input):
        return F.logsigmoid(input)


class GELU(Module):
    """GELU (``approximate='tanh'`` for the tanh form).

    >>> import eingrad
    >>> eingrad.nn.GELU()(eingrad.zeros(1)).tolist()
    [0.0]
    """

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    """``log(1 + exp(β·x)) / β``.

    >>> import eingrad
    >>> round(eingrad.nn.Softplus()(eingrad.zeros(1)).tolist()[0], 6)
    0.693147
    """

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class LeakyReLU(Module):
    """``x`` for ``x > 0``, ``negative_slope·x`` otherwise.

    >>> import eingrad
    >>> eingrad.nn.LeakyReLU(0.5)(eingrad.tensor([-2.0])).tolist()
    [-1.0]
    """

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    """``x`` for ``x > 0``, ``α(eˣ − 1)`` otherwise.

    >>> import eingrad
    >>> eingrad.nn.ELU()(eingrad.tensor([1.0])).tolist()
    [1.0]
    """

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Softmax(Module):
    """Softmax along ``dim``.

    >>> import eingrad
    >>> eingrad.nn.Softmax(dim=-1)(eingrad.zeros(2)).tolist()
    [0.5, 0.5]
    """

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """Log-softmax along ``dim``.

    >>> import eingrad
    >>> eingrad.nn.LogSoftmax(dim=-1)(eingrad.zeros(1)).tolist()
    [0.0]
    """

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.log_softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"
