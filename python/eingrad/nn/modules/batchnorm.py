"""Batch normalisation: ``BatchNorm1d``."""

from ... import _eingrad
from .. import init
from ..parameter import Parameter
from ._utils import _check_device, _dtype
from .module import Module

__all__ = ["BatchNorm1d"]


class BatchNorm1d(Module):
    """Batch normalisation over ``(N, C)`` or ``(N, C, L)``: in training each channel is
    normalised by the batch mean and (biased) variance and the running statistics are
    updated (``momentum``, with the unbiased variance; ``momentum=None``: a cumulative
    average); in eval mode the running statistics are used. Buffers as PyTorch's
    (``running_mean``, ``running_var``, ``num_batches_tracked``).

    >>> import eingrad
    >>> bn = eingrad.nn.BatchNorm1d(3)
    >>> y = bn(eingrad.randn(8, 3)); [n for n, _ in bn.named_buffers()]
    ['running_mean', 'running_var', 'num_batches_tracked']
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None):
        super().__init__()
        _check_device(device)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        d = _dtype(dtype)
        if affine:
            self.weight = Parameter(_eingrad.ones(num_features, dtype=d))
            self.bias = Parameter(_eingrad.zeros(num_features, dtype=d))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", _eingrad.zeros(num_features, dtype=d))
            self.register_buffer("running_var", _eingrad.ones(num_features, dtype=d))
            self.register_buffer("num_batches_tracked", _eingrad.zeros((), dtype=d))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        """Running mean 0, variance 1, no batches tracked."""
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)

    def forward(self, input):
        if input.ndim not in (2, 3) or input.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d: expected input of shape (N, {self.num_features}) or "
                             f"(N, {self.num_features}, L), got {tuple(input.shape)}")
        dims = (0,) if input.ndim == 2 else (0, 2)
        shape = (1, self.num_features) + ((1,) if input.ndim == 3 else ())
        if self.training or not self.track_running_stats:
            n = input.numel() // self.num_features
            if n <= 1 and self.training:
                raise ValueError("BatchNorm1d: expected more than 1 value per channel when "
                                 f"training, got input of shape {tuple(input.shape)}")
            mean = input.mean(dim=dims, keepdim=True)
            var = input.var(dim=dims, keepdim=True, unbiased=False)
            if self.training and self.track_running_stats:
                tracked = self.num_batches_tracked.item() + 1
                init.constant_(self.num_batches_tracked, tracked)
                m = 1.0 / tracked if self.momentum is None else self.momentum
                batch_mean = mean.detach().reshape(self.num_features)
                batch_var = var.detach().reshape(self.num_features) * (n / (n - 1))
                _eingrad._nn_copy_(self.running_mean,
                                   self.running_mean * (1 - m) + batch_mean * m, "running_mean")
                _eingrad._nn_copy_(self.running_var,
                                   self.running_var * (1 - m) + batch_var * m, "running_var")
        else:
            mean = self.running_mean.reshape(*shape)
            var = self.running_var.reshape(*shape)
        y = (input - mean) * (var + self.eps).rsqrt()
        if self.affine:
            y = y * self.weight.reshape(*shape) + self.bias.reshape(*shape)
        return y

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")
