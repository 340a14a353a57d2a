"""Losses: ``MSELoss``, ``CrossEntropyLoss``, ``NLLLoss`` and ``BCEWithLogitsLoss``."""

from .. import functional as F
from .module import Module

__all__ = ["MSELoss", "CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss"]


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        self.reduction = F._reduction(size_average, reduce, reduction)
        if self.reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


class MSELoss(_Loss):
    """Mean squared error (``reduction='mean'|'sum'|'none'``).

    >>> import eingrad
    >>> eingrad.nn.MSELoss()(eingrad.tensor([1.0, 2.0]), eingrad.tensor([0.0, 4.0])).item()
    2.5
    """

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(_Loss):
    """Cross-entropy of logits against class indices (or probabilities).

    >>> import eingrad
    >>> round(eingrad.nn.CrossEntropyLoss()(eingrad.zeros(2, 4), [1, 2]).item(), 6)
    1.386294
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        super().__init__(size_average, reduce, reduction)
        F._unsupported("CrossEntropyLoss", weight, "weight")
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities.

    >>> import eingrad
    >>> eingrad.nn.NLLLoss()(eingrad.tensor([[-1.0, -3.0]]), [1]).item()
    3.0
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        F._unsupported("NLLLoss", weight, "weight")
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits.

    >>> import eingrad
    >>> round(eingrad.nn.BCEWithLogitsLoss()(eingrad.zeros(1), eingrad.ones(1)).item(), 6)
    0.693147
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        F._unsupported("BCEWithLogitsLoss", weight, "weight")
        F._unsupported("BCEWithLogitsLoss", pos_weight, "pos_weight")

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, reduction=self.reduction)
