"""``nn.Parameter``: a tensor that a ``Module`` registers as one of its parameters."""

from .. import _eingrad
from .._eingrad import Tensor

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A tensor that is a module parameter: assigning one to a ``Module`` attribute
    registers it (it then appears in ``parameters()`` and ``state_dict()``).

    ``Parameter(data)`` is a leaf that requires grad (unless ``requires_grad=False``) and
    shares ``data``'s values when it can (a strided view is copied). Optimizers update it in
    place.

    >>> import eingrad
    >>> p = eingrad.nn.Parameter(eingrad.ones(2))
    >>> p.requires_grad, isinstance(p, eingrad.Tensor)
    (True, True)
    """

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = _eingrad.zeros(0)
        self = Tensor.__new__(cls, _eingrad._nn_param_data(data))
        _eingrad._nn_requires_grad_(self, bool(requires_grad))
        return self

    def __repr__(self):
        return "Parameter containing:\n" + Tensor.__repr__(self)

    __str__ = __repr__

    def __reduce_ex__(self, protocol):
        return (Parameter, (self.detach().numpy(), self.requires_grad))
