"""``eingrad.nn``: PyTorch's ``torch.nn`` over eingrad: ``Module`` and ``Parameter``, layers
(``Linear``, ``Conv1d``, ``Embedding``, ``LayerNorm``, ``Dropout``, activations, the nanoGPT
``CausalSelfAttention`` / ``Block``), containers (``Sequential``, ``ModuleList``,
``ModuleDict``), losses, ``nn.functional`` and ``nn.init``.

>>> import eingrad
>>> from eingrad import nn
>>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
>>> net(eingrad.randn(3, 4)).shape
(3, 2)
"""

from . import functional, init, utils  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules import Module  # noqa: F401
from .parameter import Parameter  # noqa: F401
