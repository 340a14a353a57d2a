"""``Dropout``."""

from .. import functional as F
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Zeroes elements with probability ``p`` in training mode (scaling the rest by
    ``1/(1−p)``); the identity in eval mode.

    >>> import eingrad
    >>> eingrad.nn.Dropout(0.5).eval()(eingrad.ones(2)).tolist()
    [1.0, 1.0]
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
