"""``Embedding``: a lookup table of vectors."""

from ... import _eingrad
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ._utils import _check_device, _dtype
from .module import Module

__all__ = ["Embedding"]


class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim`` looked up by integer
    ids, initialised from N(0, 1) (the ``padding_idx`` row, if given, starts at zero).

    >>> import eingrad
    >>> emb = eingrad.nn.Embedding(10, 3)
    >>> emb(eingrad.tensor([[1, 2], [3, 4]])).shape
    (2, 2, 3)
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 _freeze=False, device=None, dtype=None):
        super().__init__()
        _check_device(device)
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise ValueError("Embedding: max_norm, scale_grad_by_freq and sparse are not "
                             "supported by eingrad")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx={padding_idx} must be within "
                                 f"num_embeddings={num_embeddings}")
            if padding_idx < 0:
                padding_idx += num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        if _weight is None:
            self.weight = Parameter(_eingrad.zeros(num_embeddings, embedding_dim,
                                                   dtype=_dtype(dtype)),
                                    requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight has shape {tuple(_weight.shape)}, "
                                 f"expected {(num_embeddings, embedding_dim)}")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self):
        """N(0, 1), with the ``padding_idx`` row zero."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            w = self.weight.detach().numpy()
            w[self.padding_idx] = 0
            _eingrad._nn_copy_(self.weight, _eingrad.tensor(w, dtype=self.weight.dtype),
                               "weight")

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, **kwargs):
        """An embedding holding ``embeddings`` (not trained when ``freeze``).

        >>> import eingrad
        >>> eingrad.nn.Embedding.from_pretrained(eingrad.eye(3))([1]).tolist()
        [[0.0, 1.0, 0.0]]
        """
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx=padding_idx, _weight=embeddings, _freeze=freeze,
                   **kwargs)

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s
