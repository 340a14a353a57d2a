"""``nn.Module``, the base class of layers and models, as ``torch.nn.Module``."""

from collections import OrderedDict, namedtuple

from ... import _eingrad
from ..._eingrad import Tensor
from ..parameter import Parameter

__all__ = ["Module"]


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
