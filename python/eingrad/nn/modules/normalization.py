"""Normalisation over the last dims: ``LayerNorm`` and ``RMSNorm``."""

from ... import _eingrad
from .. import functional as F
from ..parameter import Parameter
from ._utils import _check_device, _dtype
from .module import Module

__all__ = ["LayerNorm", "RMSNorm"]


def _shape_tuple(normalized_shape):
    if isinstance(normalized_shape, int):
        return (normalized_shape,)
    return tuple(int(n) for n in normalized_shape)


class LayerNorm(Module):
    """Layer normalisation over the trailing ``normalized_shape`` dims, with a learned scale
    (ones) and shift (zeros) when ``elementwise_affine``.

    >>> import eingrad
    >>> ln = eingrad.nn.LayerNorm(2, eps=0.0)
    >>> ln(eingrad.tensor([[1.0, 3.0]])).tolist()
    [[-1.0, 1.0]]
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        _check_device(device)
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        d = _dtype(dtype)
        if elementwise_affine:
            self.weight = Parameter(_eingrad.ones(self.normalized_shape, dtype=d))
            if bias:
                self.bias = Parameter(_eingrad.zeros(self.normalized_shape, dtype=d))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        s = f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        if self.elementwise_affine:
            s += f", bias={self.bias is not None}"
        return s


class RMSNorm(Module):
    """Root-mean-square normalisation over the trailing dims with a learned scale (ones).

    >>> import eingrad
    >>> eingrad.nn.RMSNorm(2)(eingrad.ones(3, 2)).shape
    (3, 2)
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None,
                 dtype=None):
        super().__init__()
        _check_device(device)
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(_eingrad.ones(self.normalized_shape, dtype=_dtype(dtype)))
        else:
            self.register_parameter("weight", None)

    def forward(self, input):
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")
