"""Linear layers: ``Identity`` and ``Linear``."""

import math

from ... import _eingrad
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ._utils import _check_device, _dtype
from .module import Module

__all__ = ["Identity", "Linear"]


class Identity(Module):
    """Returns its input (any arguments are ignored).

    >>> import eingrad
    >>> eingrad.nn.Identity()(eingrad.ones(2)).tolist()
    [1.0, 1.0]
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """``y = x·Wᵀ + b`` with ``W`` ``(out_features, in_features)``, initialised as PyTorch
    does (U(−1/√in, 1/√in) for weight and bias).

    >>> import eingrad
    >>> lin = eingrad.nn.Linear(3, 2)
    >>> lin(eingrad.ones(4, 3)).shape, lin
    ((4, 2), Linear(in_features=3, out_features=2, bias=True))
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        _check_device(device)
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"Linear: {name} must be a non-negative int, got {v!r}")
        self.in_features = in_features
        self.out_features = out_features
        d = _dtype(dtype)
        self.weight = Parameter(_eingrad.zeros(out_features, in_features, dtype=d))
        if bias:
            self.bias = Parameter(_eingrad.zeros(out_features, dtype=d))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default init: kaiming_uniform_(a=√5) for the weight, U(−1/√in, 1/√in)
        for the bias."""
        if self.in_features == 0:
            return
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
