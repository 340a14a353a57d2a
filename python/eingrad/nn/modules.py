"""``nn.Module`` and the layers: PyTorch's ``torch.nn`` classes over eingrad's native ops."""

import math
from collections import OrderedDict, namedtuple

from .. import _eingrad
from .._eingrad import Tensor
from . import functional as F
from . import init
from .parameter import Parameter

__all__ = [
    "Module", "Identity", "Flatten", "Unflatten", "BatchNorm1d", "Linear", "Conv1d", "Embedding", "LayerNorm", "RMSNorm",
    "Dropout", "ReLU", "GELU", "SiLU", "Tanh", "Sigmoid", "Softplus", "LogSigmoid", "LeakyReLU",
    "ELU", "Softmax", "LogSoftmax", "Sequential", "ModuleList", "ModuleDict", "ParameterList",
    "ParameterDict", "MSELoss", "CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss",
    "CausalSelfAttention", "MLP", "Block",
]

_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class _RemovableHandle:
    """What ``register_forward_hook`` returns: ``.remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks):
        self._hooks = hooks
        self.id = _RemovableHandle._next_id
        _RemovableHandle._next_id += 1

    def remove(self):
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _addindent(s, n):
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return lines[0] + "\n" + "\n".join(" " * n + line for line in lines[1:])


class Module:
    """Base class of layers and models, as ``torch.nn.Module``.

    Assigning a ``Parameter`` or a ``Module`` to an attribute registers it, in order; the
    model's ``parameters()``, ``named_parameters()`` and ``state_dict()`` walk them with
    PyTorch's dotted names. Calling the module runs ``forward``.

    >>> import eingrad
    >>> from eingrad import nn
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(3, 2)
    ...     def forward(self, x):
    ...         return self.fc(x).relu() if hasattr(x, "relu") else nn.functional.relu(self.fc(x))
    >>> [name for name, _ in Net().named_parameters()]
    ['fc.weight', 'fc.bias']
    """

    training: bool
    _version = 1

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(
                f"{type(self).__name__}.__init__() got unexpected arguments: Module.__init__ "
                "takes none")
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())

    # ---- registration ----

    def _check_init(self, what):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call")

    def register_parameter(self, name, param):
        """Adds a parameter (or ``None``) under ``name``.

        >>> import eingrad
        >>> m = eingrad.nn.Module(); m.register_parameter("w", eingrad.nn.Parameter(eingrad.ones(2)))
        >>> [n for n, _ in m.named_parameters()]
        ['w']
        """
        self._check_init("parameters")
        if not isinstance(name, str):
            raise TypeError(f"parameter name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f"parameter name {name!r} can't be empty or contain '.'")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                "(eingrad.nn.Parameter or None required)")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Adds a tensor that is state but not a parameter (saved in ``state_dict`` unless
        ``persistent=False``).

        >>> import eingrad
        >>> m = eingrad.nn.Module(); m.register_buffer("mask", eingrad.ones(2))
        >>> list(m.state_dict())
        ['mask']
        """
        self._check_init("buffers")
        if not isinstance(name, str):
            raise TypeError(f"buffer name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f"buffer name {name!r} can't be empty or contain '.'")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                "(eingrad.Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name, module):
        """Adds a child module under ``name``.

        >>> import eingrad
        >>> m = eingrad.nn.Module(); m.add_module("fc", eingrad.nn.Linear(2, 2))
        >>> [n for n, _ in m.named_children()]
        ['fc']
        """
        self._check_init("child modules")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if not isinstance(name, str):
            raise TypeError(f"module name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f"module name {name!r} can't be empty or contain '.'")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name, value):
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            self._check_init("parameters")
            self._remove_from(name, d.get("_buffers"), d.get("_modules"))
            d.pop(name, None)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                    "(eingrad.nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            self._check_init("child modules")
            self._remove_from(name, params, d.get("_buffers"))
            d.pop(name, None)
            self._modules[name] = value
        elif d.get("_modules") is not None and name in d["_modules"]:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as child module '{name}' "
                    "(eingrad.nn.Module or None expected)")
            d["_modules"][name] = None
        elif d.get("_buffers") is not None and name in d["_buffers"]:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                    "(eingrad.Tensor or None expected)")
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    @staticmethod
    def _remove_from(name, *dicts):
        for dct in dicts:
            if dct is not None and name in dct:
                del dct[name]

    def __getattr__(self, name):
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            store = d.get(key)
            if store is not None and name in store:
                return store[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for key in ("_parameters", "_buffers", "_modules"):
            store = self.__dict__.get(key)
            if store is not None and name in store:
                del store[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        keys = list(super().__dir__())
        for key in ("_parameters", "_buffers", "_modules"):
            keys += list(self.__dict__.get(key, {}))
        return sorted(set(keys))

    # ---- calling ----

    def forward(self, *args, **kwargs):
        """The computation; subclasses override it (call the module, not ``forward``)."""
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            out = hook(self, args)
            if out is not None:
                args = out if isinstance(out, tuple) else (out,)
        result = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            out = hook(self, args, result)
            if out is not None:
                result = out
        return result

    def register_forward_hook(self, hook):
        """``hook(module, args, output)`` runs after each forward (a non-None return replaces
        the output); returns a handle with ``.remove()``.

        >>> import eingrad
        >>> lin = eingrad.nn.Linear(2, 2); seen = []
        >>> h = lin.register_forward_hook(lambda m, a, o: seen.append(o.shape))
        >>> _ = lin(eingrad.ones(1, 2)); h.remove(); _ = lin(eingrad.ones(1, 2)); seen
        [(1, 2)]
        """
        handle = _RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def register_forward_pre_hook(self, hook):
        """``hook(module, args)`` runs before each forward (a non-None return replaces the
        arguments); returns a handle with ``.remove()``.

        >>> import eingrad
        >>> lin = eingrad.nn.Identity()
        >>> h = lin.register_forward_pre_hook(lambda m, a: (a[0] * 2,))
        >>> lin(eingrad.ones(1)).tolist()
        [2.0]
        """
        handle = _RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    # ---- traversal ----

    def _named_members(self, get, prefix="", recurse=True, remove_duplicate=True):
        memo = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for k, v in get(module):
                if v is None:
                    continue
                if remove_duplicate:
                    if id(v) in memo:
                        continue
                    memo.add(id(v))
                yield (module_prefix + ("." if module_prefix else "") + k, v)

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """``(name, parameter)`` pairs with dotted names (``"0.weight"``), each parameter
        once.

        >>> import eingrad
        >>> [n for n, _ in eingrad.nn.Sequential(eingrad.nn.Linear(2, 2)).named_parameters()]
        ['0.weight', '0.bias']
        """
        yield from self._named_members(lambda m: m._parameters.items(), prefix, recurse,
                                       remove_duplicate)

    def parameters(self, recurse=True):
        """The parameters (of the submodules too unless ``recurse=False``), each once.

        >>> import eingrad
        >>> sum(p.numel() for p in eingrad.nn.Linear(3, 2).parameters())
        8
        """
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        """``(name, buffer)`` pairs with dotted names.

        >>> import eingrad
        >>> list(eingrad.nn.Linear(2, 2).named_buffers())
        []
        """
        yield from self._named_members(lambda m: m._buffers.items(), prefix, recurse,
                                       remove_duplicate)

    def buffers(self, recurse=True):
        """The buffers.

        >>> import eingrad
        >>> list(eingrad.nn.Linear(2, 2).buffers())
        []
        """
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def named_children(self):
        """The direct submodules with their names.

        >>> import eingrad
        >>> [n for n, _ in eingrad.nn.Sequential(eingrad.nn.ReLU()).named_children()]
        ['0']
        """
        memo = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in memo:
                memo.add(id(module))
                yield name, module

    def children(self):
        """The direct submodules.

        >>> import eingrad
        >>> len(list(eingrad.nn.Sequential(eingrad.nn.ReLU(), eingrad.nn.Tanh()).children()))
        2
        """
        for _, module in self.named_children():
            yield module

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """This module and all below it, with dotted names (this one is ``""``).

        >>> import eingrad
        >>> [n for n, _ in eingrad.nn.Sequential(eingrad.nn.ReLU()).named_modules()]
        ['', '0']
        """
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self):
        """This module and all below it.

        >>> import eingrad
        >>> len(list(eingrad.nn.Sequential(eingrad.nn.ReLU()).modules()))
        2
        """
        for _, m in self.named_modules():
            yield m

    def get_submodule(self, target):
        """The submodule at the dotted path ``target`` (``""`` is this module).

        >>> import eingrad
        >>> eingrad.nn.Sequential(eingrad.nn.ReLU()).get_submodule("0")
        ReLU()
        """
        if target == "":
            return self
        mod = self
        for item in target.split("."):
            if not isinstance(mod, Module) or item not in mod._modules:
                raise AttributeError(f"{type(mod).__name__} has no submodule `{item}` "
                                     f"(looking up {target!r})")
            mod = mod._modules[item]
        return mod

    def get_parameter(self, target):
        """The parameter at the dotted path ``target``.

        >>> import eingrad
        >>> eingrad.nn.Sequential(eingrad.nn.Linear(2, 3)).get_parameter("0.bias").shape
        (3,)
        """
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._parameters:
            raise AttributeError(f"{type(mod).__name__} has no parameter `{name}`")
        return mod._parameters[name]

    # ---- state ----

    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """Parameters and persistent buffers by dotted name, in registration order, as an
        ``OrderedDict`` of tensors (detached unless ``keep_vars``).

        >>> import eingrad
        >>> list(eingrad.nn.Linear(2, 3).state_dict())
        ['weight', 'bias']
        """
        if destination is None:
            destination = OrderedDict()
        for name, module in self.named_modules(prefix=prefix.rstrip(".") if prefix else ""):
            dot = name + "." if name else ""
            for k, p in module._parameters.items():
                if p is not None:
                    destination[dot + k] = p if keep_vars else p.detach()
            for k, b in module._buffers.items():
                if b is not None and k not in module._non_persistent_buffers_set:
                    destination[dot + k] = b if keep_vars else b.detach()
        return destination

    def _state_targets(self):
        targets = OrderedDict()
        for name, module in self.named_modules():
            dot = name + "." if name else ""
            for k, p in module._parameters.items():
                if p is not None:
                    targets[dot + k] = (module, "_parameters", k, p)
            for k, b in module._buffers.items():
                if b is not None and k not in module._non_persistent_buffers_set:
                    targets[dot + k] = (module, "_buffers", k, b)
        return targets

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copies the values of ``state_dict`` into the parameters and buffers, in place.
        Shape mismatches (and, with ``strict``, missing or unexpected keys) raise a
        ``RuntimeError`` naming every offending key, and then nothing is loaded. Returns
        ``(missing_keys, unexpected_keys)``.

        >>> import eingrad
        >>> a, b = eingrad.nn.Linear(2, 2), eingrad.nn.Linear(2, 2)
        >>> b.load_state_dict(a.state_dict())
        <All keys matched successfully>
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        targets = self._state_targets()
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict.keys() if k not in targets]
        errors = []
        for key, (_, _, _, t) in targets.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            if not isinstance(value, Tensor):
                try:
                    value = _eingrad.tensor(value, dtype=t.dtype)
                except (TypeError, ValueError) as e:
                    errors.append(f'While copying the parameter named "{key}", expected a '
                                  f"tensor in the checkpoint, got {type(value).__name__}: {e}")
                    continue
            if tuple(value.shape) != tuple(t.shape):
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {tuple(value.shape)} "
                    f"from checkpoint, the shape in current model is {tuple(t.shape)}.")
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in unexpected) + ". ")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in missing) + ". ")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        for key, (module, store, k, t) in targets.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            if not isinstance(value, Tensor):
                value = _eingrad.tensor(value, dtype=t.dtype)
            if assign:
                if store == "_parameters" and not isinstance(value, Parameter):
                    value = Parameter(value, requires_grad=t.requires_grad)
                getattr(module, store)[k] = value
            else:
                _eingrad._nn_copy_(t, value, key)
        return _IncompatibleKeys(missing, unexpected) if (missing or unexpected) \
            else _AllMatched(missing, unexpected)

    # ---- modes and bulk operations ----

    def train(self, mode=True):
        """Sets training mode (dropout active) on this module and all below; returns self.

        >>> import eingrad
        >>> eingrad.nn.Dropout().train(False).training
        False
        """
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        """Same as ``train(False)``.

        >>> import eingrad
        >>> eingrad.nn.Linear(1, 1).eval().training
        False
        """
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Sets ``requires_grad`` on every parameter (freezing with ``False``); returns self.

        >>> import eingrad
        >>> any(p.requires_grad for p in eingrad.nn.Linear(2, 2).requires_grad_(False).parameters())
        False
        """
        for p in self.parameters():
            _eingrad._nn_requires_grad_(p, bool(requires_grad))
        return self

    def zero_grad(self, set_to_none=True):
        """Clears the gradients of every parameter (or fills them with zeros).

        >>> import eingrad
        >>> eingrad.nn.Linear(2, 2).zero_grad()
        """
        _eingrad._nn_zero_grad(list(self.parameters()), bool(set_to_none))

    def apply(self, fn):
        """Calls ``fn`` on every submodule (children first) and on this module; returns self.

        >>> import eingrad
        >>> names = []
        >>> _ = eingrad.nn.Sequential(eingrad.nn.ReLU()).apply(lambda m: names.append(type(m).__name__))
        >>> names
        ['ReLU', 'Sequential']
        """
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def _cast(self, dtype):
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None and p.dtype != dtype:
                    _eingrad._nn_rebind(p, p.detach().to(dtype), False)
            for k, b in list(m._buffers.items()):
                if b is not None and b.dtype != dtype:
                    m._buffers[k] = b.to(dtype)
        return self

    def to(self, *args, **kwargs):
        """Converts the parameters and buffers to a dtype, in place (the Parameter objects
        stay the same); a device argument must be ``"cpu"``. Returns self.

        >>> import eingrad
        >>> eingrad.nn.Linear(2, 2).to(eingrad.float64).weight.dtype
        eingrad.float64
        """
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, (str,)) or type(a).__name__ == "device":
                device = a
            elif isinstance(a, Tensor):
                dtype = a.dtype
            else:
                dtype = a
        if device is not None and str(device) != "cpu":
            raise ValueError(f"to(): eingrad runs on the CPU only, got device {device!r}")
        if dtype is not None:
            probe = _eingrad.zeros(0, dtype=dtype)
            self._cast(probe.dtype)
        return self

    def double(self):
        """Casts the parameters and buffers to float64; returns self.

        >>> import eingrad
        >>> eingrad.nn.Linear(2, 2).double().bias.dtype
        eingrad.float64
        """
        return self._cast(_eingrad.float64)

    def float(self):
        """Casts the parameters and buffers to float32; returns self.

        >>> import eingrad
        >>> eingrad.nn.Linear(2, 2).double().float().bias.dtype
        eingrad.float32
        """
        return self._cast(_eingrad.float32)

    def cpu(self):
        """Returns self (eingrad runs on the CPU)."""
        return self

    # ---- repr ----

    def extra_repr(self):
        """The text inside the parentheses of this module's repr (subclasses override)."""
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = []
        for key, module in self._modules.items():
            mod_str = _addindent(repr(module), 2)
            child_lines.append("(" + key + "): " + mod_str)
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"


class _AllMatched(_IncompatibleKeys):
    def __repr__(self):
        return "<All keys matched successfully>"


# ---- layers ----------------------------------------------------------------------------


def _dtype(dtype):
    return _eingrad.float32 if dtype is None else _eingrad.zeros(0, dtype=dtype).dtype


def _check_device(device):
    if device is not None and str(device) != "cpu":
        raise ValueError(f"eingrad runs on the CPU only, got device {device!r}")


class Identity(Module):
    """Returns its input (any arguments are ignored).

    >>> import eingrad
    >>> eingrad.nn.Identity()(eingrad.ones(2)).tolist()
    [1.0, 1.0]
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Flatten(Module):
    """Flattens dims ``start_dim`` to ``end_dim`` into one.

    >>> import eingrad
    >>> eingrad.nn.Flatten()(eingrad.ones(2, 3, 4)).shape
    (2, 12)
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Splits dim ``dim`` into ``unflattened_size``.

    >>> import eingrad
    >>> eingrad.nn.Unflatten(1, (3, 4))(eingrad.ones(2, 12)).shape
    (2, 3, 4)
    """

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input):
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


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


class Linear(Module):
    """``y = x·Wᵀ + b`` with ``W`` ``(out_features, in_features)``, initialised as PyTorch
    does (U(−1/√in, 1/√in) for weight and bias).

    >>> import eingrad
    >>> lin = eingrad.nn.Linear(3, 2)
    >>> lin(eingrad.ones(4, 3)).shape, lin
    ((4, 2), Linear(in_features=3, out_features=2, bias=True))
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        _check_device(device)
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"Linear: {name} must be a non-negative int, got {v!r}")
        self.in_features = in_features
        self.out_features = out_features
        d = _dtype(dtype)
        self.weight = Parameter(_eingrad.zeros(out_features, in_features, dtype=d))
        if bias:
            self.bias = Parameter(_eingrad.zeros(out_features, dtype=d))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default init: kaiming_uniform_(a=√5) for the weight, U(−1/√in, 1/√in)
        for the bias."""
        if self.in_features == 0:
            return
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


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


def _shape_tuple(normalized_shape):
    if isinstance(normalized_shape, int):
        return (normalized_shape,)
    return tuple(int(n) for n in normalized_shape)


class LayerNorm(Module):
    """Layer normalisation over the trailing ``normalized_shape`` dims, with a learned scale
    (ones) and shift (zeros) when ``elementwise_affine``.

    >>> import eingrad
    >>> ln = eingrad.nn.LayerNorm(2, eps=0.0)
    >>> ln(eingrad.tensor([[1.0, 3.0]])).tolist()
    [[-1.0, 1.0]]
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        _check_device(device)
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        d = _dtype(dtype)
        if elementwise_affine:
            self.weight = Parameter(_eingrad.ones(self.normalized_shape, dtype=d))
            if bias:
                self.bias = Parameter(_eingrad.zeros(self.normalized_shape, dtype=d))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        s = f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        if self.elementwise_affine:
            s += f", bias={self.bias is not None}"
        return s


class RMSNorm(Module):
    """Root-mean-square normalisation over the trailing dims with a learned scale (ones).

    >>> import eingrad
    >>> eingrad.nn.RMSNorm(2)(eingrad.ones(3, 2)).shape
    (3, 2)
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None,
                 dtype=None):
        super().__init__()
        _check_device(device)
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(_eingrad.ones(self.normalized_shape, dtype=_dtype(dtype)))
        else:
            self.register_parameter("weight", None)

    def forward(self, input):
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


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


class _Activation(Module):
    _fn = None

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return type(self)._fn(input)

    def extra_repr(self):
        return "inplace=True" if getattr(self, "inplace", False) else ""


class ReLU(_Activation):
    """``max(x, 0)``.

    >>> import eingrad
    >>> eingrad.nn.ReLU()(eingrad.tensor([-1.0, 1.0])).tolist()
    [0.0, 1.0]
    """

    def forward(self, input):
        return F.relu(input, self.inplace)


class SiLU(_Activation):
    """``x·σ(x)``.

    >>> import eingrad
    >>> eingrad.nn.SiLU()(eingrad.zeros(1)).tolist()
    [0.0]
    """

    def forward(self, input):
        return F.silu(input, self.inplace)


class Tanh(_Activation):
    """``tanh(x)``.

    >>> import eingrad
    >>> eingrad.nn.Tanh()(eingrad.zeros(1)).tolist()
    [0.0]
    """

    def __init__(self):
        super().__init__()

    def forward(self, input):
        return F.tanh(input)


class Sigmoid(_Activation):
    """``σ(x)``.

    >>> import eingrad
    >>> eingrad.nn.Sigmoid()(eingrad.zeros(1)).tolist()
    [0.5]
    """

    def __init__(self):
        super().__init__()

    def forward(self, input):
        return F.sigmoid(input)


class LogSigmoid(_Activation):
    """``log σ(x)``.

    >>> import eingrad
    >>> round(eingrad.nn.LogSigmoid()(eingrad.zeros(1)).tolist()[0], 6)
    -0.693147
    """

    def __init__(self):
        super().__init__()

    def forward(self, input):
        return F.logsigmoid(input)


class GELU(Module):
    """GELU (``approximate='tanh'`` for the tanh form).

    >>> import eingrad
    >>> eingrad.nn.GELU()(eingrad.zeros(1)).tolist()
    [0.0]
    """

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    """``log(1 + exp(β·x)) / β``.

    >>> import eingrad
    >>> round(eingrad.nn.Softplus()(eingrad.zeros(1)).tolist()[0], 6)
    0.693147
    """

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class LeakyReLU(Module):
    """``x`` for ``x > 0``, ``negative_slope·x`` otherwise.

    >>> import eingrad
    >>> eingrad.nn.LeakyReLU(0.5)(eingrad.tensor([-2.0])).tolist()
    [-1.0]
    """

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    """``x`` for ``x > 0``, ``α(eˣ − 1)`` otherwise.

    >>> import eingrad
    >>> eingrad.nn.ELU()(eingrad.tensor([1.0])).tolist()
    [1.0]
    """

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Softmax(Module):
    """Softmax along ``dim``.

    >>> import eingrad
    >>> eingrad.nn.Softmax(dim=-1)(eingrad.zeros(2)).tolist()
    [0.5, 0.5]
    """

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """Log-softmax along ``dim``.

    >>> import eingrad
    >>> eingrad.nn.LogSoftmax(dim=-1)(eingrad.zeros(1)).tolist()
    [0.0]
    """

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.log_softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


# ---- containers ------------------------------------------------------------------------


def _index(idx, n, what):
    if not isinstance(idx, int) or isinstance(idx, bool):
        raise TypeError(f"{what} indices must be integers or slices, not {type(idx).__name__}")
    if not -n <= idx < n:
        raise IndexError(f"index {idx} is out of range for a {what} of length {n}")
    return idx % n


class Sequential(Module):
    """Modules applied in order; their parameters are named ``"0.weight"``, ``"1.bias"``, ...
    (or by the keys of an ``OrderedDict``).

    >>> import eingrad
    >>> from eingrad import nn
    >>> net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    >>> net(eingrad.ones(3, 2)).shape, [n for n, _ in net.named_parameters()][:2]
    ((3, 1), ['0.weight', '0.bias'])
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for key, module in args[0].items():
                self.add_module(key, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[_index(idx, len(self), "Sequential")]

    def __setitem__(self, idx, module):
        key = list(self._modules)[_index(idx, len(self), "Sequential")]
        self.add_module(key, module)

    def __delitem__(self, idx):
        if isinstance(idx, slice):
            for key in list(self._modules)[idx]:
                del self._modules[key]
        else:
            del self._modules[list(self._modules)[_index(idx, len(self), "Sequential")]]
        # renumber, as torch does
        items = list(self._modules.values())
        self._modules.clear()
        for i, m in enumerate(items):
            self._modules[str(i)] = m

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        """Adds a module at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        """Adds modules at the end; returns self."""
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        """Inserts a module before position ``index``; returns self."""
        n = len(self)
        if not -n <= index <= n:
            raise IndexError(f"index {index} is out of range for a Sequential of length {n}")
        index %= n + 1 if n else 1
        items = list(self._modules.values())
        items.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(items):
            self.add_module(str(i), m)
        return self

    def forward(self, input):
        for module in self:
            input = module(input)
        return input


class ModuleList(Module):
    """A list of modules whose parameters the owner registers (``"0.weight"``, ...).

    >>> import eingrad
    >>> layers = eingrad.nn.ModuleList([eingrad.nn.Linear(2, 2) for _ in range(3)])
    >>> len(layers), len(list(layers.parameters()))
    (3, 6)
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return self._modules[str(_index(idx, len(self), "ModuleList"))]

    def __setitem__(self, idx, module):
        self.add_module(str(_index(idx, len(self), "ModuleList")), module)

    def __delitem__(self, idx):
        items = list(self._modules.values())
        if isinstance(idx, slice):
            del items[idx]
        else:
            del items[_index(idx, len(self), "ModuleList")]
        self._modules.clear()
        for i, m in enumerate(items):
            self._modules[str(i)] = m

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules):
        return self.extend(modules)

    def __add__(self, other):
        return ModuleList(list(self) + list(other))

    def append(self, module):
        """Adds a module at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        """Adds modules at the end; returns self."""
        if isinstance(modules, Module) and not isinstance(modules, (ModuleList, Sequential)):
            raise TypeError("ModuleList.extend should be called with an iterable of modules, "
                            f"got {type(modules).__name__}")
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        """Inserts a module before position ``index``."""
        items = list(self._modules.values())
        items.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(items):
            self.add_module(str(i), m)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward: iterate over its modules")


class ModuleDict(Module):
    """A dict of modules whose parameters the owner registers (``"key.weight"``, ...).

    >>> import eingrad
    >>> d = eingrad.nn.ModuleDict({"enc": eingrad.nn.Linear(2, 2)})
    >>> list(d.keys()), [n for n, _ in d.named_parameters()]
    (['enc'], ['enc.weight', 'enc.bias'])
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def clear(self):
        """Removes every module."""
        self._modules.clear()

    def pop(self, key):
        """Removes and returns the module under ``key``."""
        return self._modules.pop(key)

    def keys(self):
        """The keys, in insertion order."""
        return self._modules.keys()

    def items(self):
        """``(key, module)`` pairs."""
        return self._modules.items()

    def values(self):
        """The modules."""
        return self._modules.values()

    def update(self, modules):
        """Adds the modules of a mapping or of ``(key, module)`` pairs."""
        items = modules.items() if hasattr(modules, "items") else modules
        for key, module in items:
            self[key] = module

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict has no forward: index it by key")


class ParameterList(Module):
    """A list of parameters registered as ``"0"``, ``"1"``, ... (tensors are wrapped as
    ``Parameter``).

    >>> import eingrad
    >>> ps = eingrad.nn.ParameterList([eingrad.ones(2), eingrad.zeros(3)])
    >>> [n for n, _ in ps.named_parameters()]
    ['0', '1']
    """

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ParameterList(list(self._parameters.values())[idx])
        return self._parameters[str(_index(idx, len(self), "ParameterList"))]

    def __setitem__(self, idx, value):
        i = _index(idx, len(self), "ParameterList")
        self.register_parameter(str(i), value if isinstance(value, Parameter)
                                else Parameter(value))

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def append(self, value):
        """Adds a parameter at the end; returns self."""
        self.register_parameter(str(len(self)), value if isinstance(value, Parameter)
                                else Parameter(value))
        return self

    def extend(self, values):
        """Adds parameters at the end; returns self."""
        for v in values:
            self.append(v)
        return self

    def extra_repr(self):
        return "\n".join(f"({k}): Parameter containing: [Tensor of shape {tuple(p.shape)}]"
                         for k, p in self._parameters.items())


class ParameterDict(Module):
    """A dict of parameters registered under their keys.

    >>> import eingrad
    >>> pd = eingrad.nn.ParameterDict({"scale": eingrad.ones(1)})
    >>> [n for n, _ in pd.named_parameters()]
    ['scale']
    """

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key):
        return self._parameters[key]

    def __setitem__(self, key, value):
        self.register_parameter(key, value if isinstance(value, Parameter) else Parameter(value))

    def __delitem__(self, key):
        del self._parameters[key]

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters)

    def __contains__(self, key):
        return key in self._parameters

    def keys(self):
        """The keys."""
        return self._parameters.keys()

    def items(self):
        """``(key, parameter)`` pairs."""
        return self._parameters.items()

    def values(self):
        """The parameters."""
        return self._parameters.values()

    def update(self, parameters):
        """Adds the parameters of a mapping or of ``(key, tensor)`` pairs."""
        items = parameters.items() if hasattr(parameters, "items") else parameters
        for k, v in items:
            self[k] = v


# ---- losses ----------------------------------------------------------------------------


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


# ---- transformer pieces (nanoGPT's names) ----------------------------------------------


class CausalSelfAttention(Module):
    """nanoGPT's causal multi-head self-attention over ``(B, T, C)``: ``c_attn`` (C → 3C,
    q/k/v), a causal softmax(q·kᵀ/√d), ``c_proj`` (C → C), dropout on the attention weights
    and the output in training mode.

    >>> import eingrad
    >>> attn = eingrad.nn.CausalSelfAttention(8, 2)
    >>> attn(eingrad.randn(2, 5, 8)).shape, [n for n, _ in attn.named_parameters()][0]
    ((2, 5, 8), 'c_attn.weight')
    """

    def __init__(self, n_embd, n_head, bias=True, dropout=0.0, dtype=None):
        super().__init__()
        if n_head < 1 or n_embd % n_head:
            raise ValueError(f"CausalSelfAttention: n_head={n_head} must be ≥ 1 and divide "
                             f"n_embd={n_embd}")
        self.c_attn = Linear(n_embd, 3 * n_embd, bias=bias, dtype=dtype)
        self.c_proj = Linear(n_embd, n_embd, bias=bias, dtype=dtype)
        self.n_head, self.n_embd, self.dropout = n_head, n_embd, dropout

    def forward(self, x):
        return F.scaled_causal_self_attention(x, self.c_attn.weight, self.c_attn.bias,
                                              self.c_proj.weight, self.c_proj.bias,
                                              self.n_head, self.dropout, self.training)

    def extra_repr(self):
        return f"n_embd={self.n_embd}, n_head={self.n_head}, dropout={self.dropout}"


class MLP(Module):
    """nanoGPT's feed-forward block: ``c_fc`` (C → 4C), GELU, ``c_proj`` (4C → C), dropout.

    >>> import eingrad
    >>> eingrad.nn.MLP(8)(eingrad.ones(1, 3, 8)).shape
    (1, 3, 8)
    """

    def __init__(self, n_embd, bias=True, dropout=0.0, dtype=None):
        super().__init__()
        self.c_fc = Linear(n_embd, 4 * n_embd, bias=bias, dtype=dtype)
        self.gelu = GELU()
        self.c_proj = Linear(4 * n_embd, n_embd, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(Module):
    """nanoGPT's pre-LayerNorm transformer block: ``x + attn(ln_1(x))``, then ``x +
    mlp(ln_2(x))``.

    >>> import eingrad
    >>> blk = eingrad.nn.Block(8, 2)
    >>> blk(eingrad.randn(1, 4, 8)).shape, len(list(blk.parameters()))
    ((1, 4, 8), 12)
    """

    def __init__(self, n_embd, n_head, bias=True, dropout=0.0, dtype=None):
        super().__init__()
        self.ln_1 = LayerNorm(n_embd, bias=bias, dtype=dtype)
        self.attn = CausalSelfAttention(n_embd, n_head, bias=bias, dropout=dropout, dtype=dtype)
        self.ln_2 = LayerNorm(n_embd, bias=bias, dtype=dtype)
        self.mlp = MLP(n_embd, bias=bias, dropout=dropout, dtype=dtype)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))
