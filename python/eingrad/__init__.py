"""eingrad: tensors with automatic differentiation to any order, built around einsum.

PyTorch's names wherever PyTorch has one::

    >>> import eingrad
    >>> x = eingrad.tensor([[1., 2.], [3., 4.]], requires_grad=True)
    >>> y = eingrad.einsum("ij,jk->ik", x, x).sum()
    >>> y.backward(); x.grad
    tensor([[ 7., 11.],
            [ 9., 13.]])

The tensor, its ops and the factories come from the native module ``eingrad._eingrad``;
``eingrad.autograd``, ``eingrad.func``, ``eingrad.nn``, ``eingrad.optim`` and ``eingrad.io``
wrap the rest under PyTorch's (and ``torch.func``'s) names.
"""

from . import _eingrad
from ._eingrad import *  # noqa: F401,F403  (the tensor, its ops and factories)
from ._eingrad import Tensor, dtype, float32, float64  # noqa: F401  (named for editors)

from . import autograd, func, io, nn, optim  # noqa: E402,F401
from .autograd import (  # noqa: E402,F401  (torch.no_grad and friends)
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from .io import load, save  # noqa: E402,F401  (torch.save / torch.load: tensors and state dicts)

__version__ = _eingrad.__version__
