"""``nn.Module`` and the layers: PyTorch's ``torch.nn`` classes over eingrad's native ops.

One file per kind, as ``torch.nn.modules``: ``module`` (the ``Module`` base class),
``container``, ``linear``, ``flatten``, ``conv``, ``sparse`` (``Embedding``), ``batchnorm``,
``normalization``, ``dropout``, ``activation``, ``loss`` and ``transformer`` (nanoGPT's
pieces); this package re-exports their classes."""

from .module import Module
from .container import Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict
from .linear import Identity, Linear
from .flatten import Flatten, Unflatten
from .conv import Conv1d
from .sparse import Embedding
from .batchnorm import BatchNorm1d
from .normalization import LayerNorm, RMSNorm
from .dropout import Dropout
from .activation import (
    ReLU, SiLU, Tanh, Sigmoid, LogSigmoid, GELU, Softplus, LeakyReLU, ELU, Softmax, LogSoftmax,
)
from .loss import MSELoss, CrossEntropyLoss, NLLLoss, BCEWithLogitsLoss
from .transformer import CausalSelfAttention, MLP, Block

__all__ = [
    "Module", "Identity", "Flatten", "Unflatten", "BatchNorm1d", "Linear", "Conv1d", "Embedding", "LayerNorm", "RMSNorm",
    "Dropout", "ReLU", "GELU", "SiLU", "Tanh", "Sigmoid", "Softplus", "LogSigmoid", "LeakyReLU",
    "ELU", "Softmax", "LogSoftmax", "Sequential", "ModuleList", "ModuleDict", "ParameterList",
    "ParameterDict", "MSELoss", "CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss",
    "CausalSelfAttention", "MLP", "Block",
]
