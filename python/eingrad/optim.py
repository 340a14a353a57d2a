"""``eingrad.optim``: ``torch.optim``'s optimizers (``SGD``, ``Adam``, ``AdamW``) over the
Rust library's fused in-place updates, and learning-rate schedulers.

Each parameter group (``optimizer.param_groups``, a list of dicts as in PyTorch) is driven by
one native optimizer; changing a group's ``lr`` (as schedulers do) or another hyperparameter
takes effect at the next ``step()``. ``step()`` releases the GIL.

>>> import eingrad
>>> w = eingrad.nn.Parameter(eingrad.ones(2))
>>> opt = eingrad.optim.SGD([w], lr=0.1)
>>> opt.param_groups[0]["lr"]
0.1
"""

import math

from . import _eingrad
from ._eingrad import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]


def _check_number(name, value, minimum=0.0):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and value >= minimum):
        raise ValueError(f"Invalid {name}: {value} (must be finite and ≥ {minimum})")


class Optimizer:
    """Base class of the optimizers: ``param_groups``, ``step``, ``zero_grad``,
    ``state_dict`` / ``load_state_dict`` and ``add_param_group``, as in ``torch.optim``.

    Subclasses set ``_make_core(group)``, which builds the native optimizer of one group.
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self._cores = []
        self._built = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__}")
        if isinstance(params, dict):
            params = [params]
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ---- groups ----

    def add_param_group(self, param_group):
        """Adds a group (a dict with ``"params"`` and any hyperparameter overrides).

        >>> import eingrad
        >>> a, b = eingrad.nn.Parameter(eingrad.ones(1)), eingrad.nn.Parameter(eingrad.ones(1))
        >>> opt = eingrad.optim.SGD([a], lr=0.1); opt.add_param_group({"params": [b], "lr": 0.5})
        >>> [g["lr"] for g in opt.param_groups]
        [0.1, 0.5]
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise KeyError("param_group must have a 'params' entry")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs; use "
                            "a list instead")
        params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but params[{i}] is a "
                                f"{type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        group["params"] = params
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        core = self._make_core(group)
        self.param_groups.append(group)
        self._cores.append(core)
        self._built.append(self._signature(group))

    def _signature(self, group):
        return (tuple(id(p) for p in group["params"]),
                tuple((k, _freeze(group[k])) for k in sorted(self.defaults) if k != "lr"))

    def _sync(self, i):
        """Rebuilds group ``i``'s native optimizer if its hyperparameters or parameters
        changed (keeping the state when the parameters are the same), and sets its lr."""
        group, core = self.param_groups[i], self._cores[i]
        sig = self._signature(group)
        if sig != self._built[i]:
            new = self._make_core(group)
            if sig[0] == self._built[i][0]:
                try:
                    new.load_state_tensors(core.state_tensors())
                except ValueError:
                    # the state does not fit the new settings (momentum turned off): the
                    # buffers that no longer apply are dropped
                    pass
            self._cores[i], self._built[i] = new, sig
            core = new
        lr = group["lr"]
        _check_number("learning rate", lr)
        if core.lr != lr:
            core.set_lr(float(lr))
        return core

    # ---- stepping ----

    def step(self, closure=None):
        """Updates every parameter that has a gradient. ``closure`` (optional) re-evaluates
        the model and returns the loss, which ``step`` returns.

        >>> import eingrad
        >>> eingrad.optim.SGD([eingrad.nn.Parameter(eingrad.ones(1))], lr=0.1).step() is None
        True
        """
        loss = None
        if closure is not None:
            loss = closure()
        for i in range(len(self.param_groups)):
            self._sync(i).step()
        return loss

    def zero_grad(self, set_to_none=True):
        """Clears the gradients of every parameter (or fills them with zeros).

        >>> import eingrad
        >>> eingrad.optim.SGD([eingrad.nn.Parameter(eingrad.ones(1))], lr=0.1).zero_grad()
        """
        params = [p for g in self.param_groups for p in g["params"]]
        _eingrad._nn_zero_grad(params, bool(set_to_none))

    # ---- state ----

    @property
    def state(self):
        """The per-parameter state (``{param: {"step": ..., "exp_avg": ..., ...}}``), a
        snapshot: the tensors are copies.

        >>> import eingrad
        >>> eingrad.optim.Adam([eingrad.nn.Parameter(eingrad.ones(1))]).state
        {}
        """
        out = {}
        for i, group in enumerate(self.param_groups):
            params = group["params"]
            for name, t in self._sync(i).state_tensors():
                if name.startswith("state."):
                    _, j, field = name.split(".", 2)
                    out.setdefault(params[int(j)], {})[field] = t
        return out

    def state_dict(self):
        """``{"state": {index: {field: tensor}}, "param_groups": [{..., "params": [index,
        ...]}]}`` with parameters numbered across groups, as PyTorch.

        >>> import eingrad
        >>> sd = eingrad.optim.SGD([eingrad.nn.Parameter(eingrad.ones(1))], lr=0.1).state_dict()
        >>> sd["param_groups"][0]["params"], sd["state"]
        ([0], {})
        """
        state, groups, start = {}, [], 0
        for i, group in enumerate(self.param_groups):
            n = len(group["params"])
            for name, t in self._sync(i).state_tensors():
                if name.startswith("state."):
                    _, j, field = name.split(".", 2)
                    state.setdefault(start + int(j), {})[field] = t
            saved = {k: v for k, v in group.items() if k != "params"}
            saved["params"] = list(range(start, start + n))
            groups.append(saved)
            start += n
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restores a ``state_dict()``: the groups' hyperparameters and every parameter's
        buffers, so that training continues exactly. The groups must match in number and
        size.

        >>> import eingrad
        >>> p = eingrad.nn.Parameter(eingrad.ones(1))
        >>> a, b = eingrad.optim.SGD([p], lr=0.1), eingrad.optim.SGD([p], lr=0.5)
        >>> b.load_state_dict(a.state_dict()); b.param_groups[0]["lr"]
        0.1
        """
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict:
            raise ValueError("load_state_dict: expected a dict with 'state' and 'param_groups' "
                             "(what Optimizer.state_dict() returns)")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, the "
                             f"optimizer has {len(self.param_groups)}")
        for k, (g, s) in enumerate(zip(self.param_groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"loaded state dict contains a parameter group ({k}) that "
                                 f"doesn't match the size of optimizer's group: "
                                 f"{len(s['params'])} vs {len(g['params'])} parameters")
        state = state_dict.get("state", {})
        new_groups, new_cores, entries_per_group = [], [], []
        for g, s in zip(self.param_groups, saved_groups):
            group = dict(s)
            group["params"] = g["params"]
            core = self._make_core(group)
            entries = [("lr", _eingrad.tensor(float(group["lr"]), dtype=_eingrad.float64))]
            for j, index in enumerate(s["params"]):
                for field, t in state.get(index, {}).items():
                    if not isinstance(t, Tensor):
                        t = _eingrad.tensor(t, dtype=_eingrad.float64)
                    entries.append((f"state.{j}.{field}", t))
            core.load_state_tensors(entries)
            new_groups.append(group)
            new_cores.append(core)
            entries_per_group.append(entries)
        self.param_groups = new_groups
        self._cores = new_cores
        self._built = [self._signature(g) for g in new_groups]

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(group):
                if k != "params":
                    lines.append(f"    {k}: {group[k]}")
        lines.append(")")
        return "\n".join(lines)

    def _make_core(self, group):
        raise NotImplementedError


def _freeze(v):
    return tuple(v) if isinstance(v, list) else v


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay, as
    ``torch.optim.SGD``.

    >>> import eingrad
    >>> w = eingrad.nn.Parameter(eingrad.ones(2))
    >>> opt = eingrad.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> opt
    SGD (
    Parameter Group 0
        dampening: 0
        lr: 0.1
        maximize: False
        momentum: 0.9
        nesterov: False
        weight_decay: 0
    )
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None):
        if isinstance(lr, Tensor):
            lr = lr.item()
        _check_number("learning rate", lr)
        _check_number("momentum value", momentum)
        _check_number("dampening value", dampening)
        _check_number("weight_decay value", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _make_core(self, group):
        if group.get("maximize", False):
            raise ValueError("SGD: maximize=True is not supported by eingrad")
        _check_number("learning rate", group["lr"])
        return _eingrad._optim_sgd(group["params"], float(group["lr"]), float(group["momentum"]),
                                   float(group["dampening"]), float(group["weight_decay"]),
                                   bool(group["nesterov"]))


class Adam(Optimizer):
    """Adam with PyTorch's bias correction (``torch.optim.Adam``); ``weight_decay`` adds an L2
    term to the gradient.

    >>> import eingrad
    >>> opt = eingrad.optim.Adam([eingrad.nn.Parameter(eingrad.ones(2))], lr=1e-2)
    >>> opt.param_groups[0]["betas"]
    (0.9, 0.999)
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None):
        if isinstance(lr, Tensor):
            lr = lr.item()
        _check_number("learning rate", lr)
        _check_number("epsilon value", eps)
        _check_number("weight_decay value", weight_decay)
        betas = tuple(betas)
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        for k, b in enumerate(betas):
            _check_number(f"beta parameter at index {k}", b)
            if not b < 1.0:
                raise ValueError(f"Invalid beta parameter at index {k}: {b} (must be in [0, 1))")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def _make_core(self, group):
        if group.get("amsgrad", False):
            raise ValueError(f"{type(self).__name__}: amsgrad=True is not supported by eingrad")
        if group.get("maximize", False):
            raise ValueError(f"{type(self).__name__}: maximize=True is not supported by eingrad")
        _check_number("learning rate", group["lr"])
        b1, b2 = group["betas"]
        return _eingrad._optim_adam(group["params"], float(group["lr"]), float(b1), float(b2),
                                    float(group["eps"]), float(group["weight_decay"]),
                                    self._decoupled)


class AdamW(Adam):
    """AdamW (``torch.optim.AdamW``): Adam with decoupled weight decay ``p −= lr·wd·p``
    (default ``weight_decay=0.01``).

    >>> import eingrad
    >>> eingrad.optim.AdamW([eingrad.nn.Parameter(eingrad.ones(2))]).param_groups[0]["weight_decay"]
    0.01
    """

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize)


from . import _lr_scheduler as lr_scheduler  # noqa: E402

# `from eingrad.optim.lr_scheduler import StepLR` works as with torch.
import sys as _sys  # noqa: E402

_sys.modules[__name__ + ".lr_scheduler"] = lr_scheduler
