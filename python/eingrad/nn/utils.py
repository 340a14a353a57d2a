"""``eingrad.nn.utils``: gradient clipping and parameter flattening helpers."""

from .. import _eingrad
from .._eingrad import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None):
    """Scales the gradients of ``parameters`` in place so that their joint 2-norm is at most
    ``max_norm``; returns the norm before clipping (a 0-d tensor).

    >>> import eingrad
    >>> eingrad.nn.utils.clip_grad_norm_([], 1.0).item()
    0.0
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    if float(norm_type) != 2.0:
        raise ValueError(f"clip_grad_norm_: only norm_type=2 is supported, got {norm_type}")
    total = _eingrad._optim_clip_grad_norm(list(parameters), float(max_norm))
    if error_if_nonfinite and not (total == total and abs(total) != float("inf")):
        raise RuntimeError(f"clip_grad_norm_: the total norm of the gradients is {total}")
    return _eingrad.tensor(total)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamps every gradient element of ``parameters`` to ``[-clip_value, clip_value]`` in
    place.

    >>> import eingrad
    >>> eingrad.nn.utils.clip_grad_value_([], 1.0)
    """
    import numpy as np
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    c = float(clip_value)
    for p in parameters:
        g = getattr(p, "grad", None)
        if g is None:
            continue
        clipped = _eingrad.tensor(np.clip(g.numpy(), -c, c), dtype=g.dtype)
        _eingrad._nn_copy_(g, clipped, "grad")
