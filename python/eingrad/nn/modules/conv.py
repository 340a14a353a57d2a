"""Convolution: ``Conv1d``."""

import math

from ... import _eingrad
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ._utils import _check_device, _dtype
from .module import Module

__all__ = ["Conv1d"]


class Conv1d(Module):
    """1-d convolution over ``(N, C_in, L)`` (or ``(C_in, L)``), as ``torch.nn.Conv1d``;
    ``padding`` may also be ``'causal'`` (left padding only). Weight ``(C_out, C_in/groups,
    k)``, initialised as PyTorch does.

    >>> import eingrad
    >>> conv = eingrad.nn.Conv1d(in_channels=1, out_channels=1, kernel_size=3)
    >>> conv.weight = eingrad.nn.Parameter(eingrad.ones_like(conv.weight))
    >>> conv.bias = eingrad.nn.Parameter(eingrad.zeros_like(conv.bias))
    >>> conv(eingrad.ones(1, 1, 5)).tolist()
    [[[3.0, 3.0, 3.0]]]
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        _check_device(device)
        if padding_mode != "zeros":
            raise ValueError(f"Conv1d: only padding_mode='zeros' is supported, got "
                             f"{padding_mode!r}")

        def single(v, name):
            if isinstance(v, (tuple, list)):
                if len(v) != 1:
                    raise ValueError(f"Conv1d: {name} must be an int or a 1-tuple, got {v!r}")
                v = v[0]
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"Conv1d: {name} must be an int, got {v!r}")
            return v

        kernel_size = single(kernel_size, "kernel_size")
        stride, dilation = single(stride, "stride"), single(dilation, "dilation")
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("kernel_size", kernel_size), ("stride", stride),
                        ("dilation", dilation), ("groups", groups)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"Conv1d: {name} must be a positive int, got {v!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv1d: groups={groups} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        if isinstance(padding, str):
            if padding not in ("valid", "same", "causal"):
                raise ValueError(f"Conv1d: padding must be an int, 'valid', 'same' or "
                                 f"'causal', got {padding!r}")
            if padding == "same" and stride != 1:
                raise ValueError("Conv1d: padding='same' is not supported for strided "
                                 "convolutions")
        else:
            padding = single(padding, "padding")
            if padding < 0:
                raise ValueError(f"Conv1d: padding must be non-negative, got {padding}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = (kernel_size,), (stride,)
        self.padding = padding if isinstance(padding, str) else (padding,)
        self.dilation, self.groups = (dilation,), groups
        self.padding_mode = padding_mode
        d = _dtype(dtype)
        self.weight = Parameter(_eingrad.zeros(out_channels, in_channels // groups, kernel_size,
                                               dtype=d))
        if bias:
            self.bias = Parameter(_eingrad.zeros(out_channels, dtype=d))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default init: kaiming_uniform_(a=√5), bias U(−1/√fan_in, 1/√fan_in)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        padding = self.padding if isinstance(self.padding, str) else self.padding[0]
        return F.conv1d(input, self.weight, self.bias, self.stride[0], padding,
                        self.dilation[0], self.groups)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
            f"stride={self.stride}"
        if self.padding != (0,):
            s += f", padding={self.padding}"
        if self.dilation != (1,):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
