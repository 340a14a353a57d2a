"""eingrad.autograd: reverse-mode automatic differentiation, under PyTorch's names.

* :func:`grad` and :func:`backward` run backward passes (the GIL is released while the Rust
  engine runs; hooks and :class:`Function` backwards re-acquire it).
* :class:`no_grad`, :class:`enable_grad`, :class:`set_grad_enabled` switch recording off and
  on (per thread, as in PyTorch); :class:`detect_anomaly` / :class:`set_detect_anomaly`
  make backward fail at the first op that produces NaN or infinity. All are context
  managers and decorators.
* :class:`Function` defines a differentiable function by its forward and backward.
* :mod:`eingrad.autograd.functional` has ``jacobian``, ``hessian``, ``vjp``, ``jvp``,
  ``hvp`` and ``vhp`` with ``torch.autograd.functional``'s signatures.

>>> import eingrad
>>> x = eingrad.tensor([1., 2., 3.], requires_grad=True)
>>> (g,) = eingrad.autograd.grad(x @ x, x)
>>> g
tensor([2., 4., 6.])
"""

import functools
import inspect
import sys
import types

from . import _eingrad

__all__ = [
    "grad",
    "backward",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "inference_mode",
    "detect_anomaly",
    "set_detect_anomaly",
    "is_anomaly_enabled",
    "Function",
    "FunctionCtx",
    "functional",
    "gradcheck",
    "gradgradcheck",
    "GradcheckError",
    "Variable",
]

FunctionCtx = _eingrad._FunctionCtx
RemovableHandle = _eingrad._RemovableHandle


def _tensor_list(x):
    """A tensor or a sequence of tensors as a list (and whether it was a single tensor)."""
    if isinstance(x, _eingrad.Tensor):
        return [x], True
    return list(x), False


# ---------------------------------------------------------------------------------------
# grad / backward
# ---------------------------------------------------------------------------------------


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph=None,
    create_graph=False,
    only_inputs=True,
    allow_unused=None,
    is_grads_batched=False,
    materialize_grads=False,
):
    """The gradients of ``outputs`` with respect to ``inputs``, as a tuple (``.grad`` fields
    are not touched), like ``torch.autograd.grad``.

    ``outputs`` and ``inputs`` are tensors or sequences of tensors; ``grad_outputs`` holds
    one gradient per output (``None`` is allowed for one-element outputs). An input that the
    outputs do not depend on is a ``RuntimeError`` unless ``allow_unused`` (then its gradient
    is ``None``, or zeros with ``materialize_grads``). With ``create_graph`` the gradients
    are recorded and can be differentiated again.

    >>> x = eingrad.tensor([3.], dtype=eingrad.float64, requires_grad=True)
    >>> (g,) = eingrad.autograd.grad(x * x * x, x, create_graph=True)   # 3x² = 27
    >>> eingrad.autograd.grad(g, x)                                     # 6x = 18
    (tensor([18.], dtype=eingrad.float64),)
    """
    if is_grads_batched:
        raise NotImplementedError("grad: is_grads_batched is not supported by eingrad")
    del only_inputs  # (deprecated in PyTorch and ignored there too)
    if allow_unused is None:
        allow_unused = materialize_grads
    if materialize_grads and not allow_unused:
        raise ValueError("grad: materialize_grads=True needs allow_unused to be None or True")
    ins, _ = _tensor_list(inputs)
    result = _eingrad._autograd_grad(
        outputs, ins, grad_outputs, retain_graph, create_graph, allow_unused
    )
    if materialize_grads:
        result = [
            _eingrad.zeros_like(x) if g is None else g for g, x in zip(result, ins)
        ]
    return tuple(result)


def backward(
    tensors,
    grad_tensors=None,
    retain_graph=None,
    create_graph=False,
    grad_variables=None,
    inputs=None,
):
    """Accumulates the gradients of ``tensors`` (weighted by ``grad_tensors``, one per
    tensor, ``None`` allowed for one-element tensors) into the leaves' ``.grad``, like
    ``torch.autograd.backward``. With ``inputs`` only those tensors' ``.grad`` are written.

    >>> x = eingrad.tensor([1., 2.], requires_grad=True)
    >>> eingrad.autograd.backward([x * 2, x * 3], [eingrad.ones(2), eingrad.ones(2)])
    >>> x.grad
    tensor([5., 5.])
    """
    if grad_variables is not None:
        if grad_tensors is not None:
            raise RuntimeError("backward: pass grad_tensors only (grad_variables is its old name)")
        grad_tensors = grad_variables
    if inputs is not None:
        inputs, _ = _tensor_list(inputs)
        if not inputs:
            raise RuntimeError("backward: inputs must not be empty")
    _eingrad._autograd_backward(tensors, grad_tensors, retain_graph, create_graph, inputs)


# ---------------------------------------------------------------------------------------
# Grad mode and anomaly mode
# ---------------------------------------------------------------------------------------


class _DecoratorContextManager:
    """A context manager that also decorates functions (each call runs inside a fresh copy
    of the context)."""

    def _clone(self):
        return self.__class__()

    def __call__(self, func):
        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def gen_wrapper(*args, **kwargs):
                gen = func(*args, **kwargs)
                with self._clone():
                    response = gen.send(None)
                while True:
                    try:
                        request = yield response
                    except GeneratorExit:
                        with self._clone():
                            gen.close()
                        raise
                    except BaseException:
                        with self._clone():
                            response = gen.throw(*sys.exc_info())
                    else:
                        with self._clone():
                            response = gen.send(request)

            return gen_wrapper

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self._clone():
                return func(*args, **kwargs)

        return wrapper


class _NoParamDecorator(_DecoratorContextManager):
    """Usable as ``@no_grad()`` and as bare ``@no_grad``."""

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)


class no_grad(_NoParamDecorator):
    """Disables recording of operations (on this thread) inside the block or the decorated
    function: results do not require grad. Like ``torch.no_grad``.

    >>> x = eingrad.ones(2, requires_grad=True)
    >>> with eingrad.autograd.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    def __enter__(self):
        self._prev = _eingrad._set_grad_enabled(False)

    def __exit__(self, *exc):
        _eingrad._set_grad_enabled(self._prev)
        return False


class enable_grad(_NoParamDecorator):
    """Re-enables recording inside a :class:`no_grad` block. Like ``torch.enable_grad``.

    >>> x = eingrad.ones(2, requires_grad=True)
    >>> with eingrad.autograd.no_grad():
    ...     with eingrad.autograd.enable_grad():
    ...         y = x * 2
    >>> y.requires_grad
    True
    """

    def __enter__(self):
        self._prev = _eingrad._set_grad_enabled(True)

    def __exit__(self, *exc):
        _eingrad._set_grad_enabled(self._prev)
        return False


class inference_mode(_DecoratorContextManager):
    """Like :class:`no_grad` (``torch.inference_mode``; ``mode=False`` does nothing).

    >>> x = eingrad.ones(2, requires_grad=True)
    >>> with eingrad.autograd.inference_mode():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    def __init__(self, mode=True):
        self.mode = mode

    def _clone(self):
        return self.__class__(self.mode)

    def __enter__(self):
        self._prev = _eingrad._set_grad_enabled(False) if self.mode else None

    def __exit__(self, *exc):
        if self._prev is not None:
            _eingrad._set_grad_enabled(self._prev)
        return False


class set_grad_enabled(_DecoratorContextManager):
    """Sets grad mode on or off: immediately when called as a function, until the end of the
    block as a context manager (the previous mode is restored). Like
    ``torch.set_grad_enabled``.

    >>> with eingrad.autograd.set_grad_enabled(False):
    ...     assert not eingrad.autograd.is_grad_enabled()
    """

    def __init__(self, mode):
        self.mode = bool(mode)
        self._prev = _eingrad._set_grad_enabled(self.mode)

    def _clone(self):
        return self.__class__(self.mode)

    def __call__(self, func):
        # As a decorator: undo the switch made at construction; each call switches itself.
        _eingrad._set_grad_enabled(self._prev)
        return super().__call__(func)

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        _eingrad._set_grad_enabled(self._prev)
        return False


def is_grad_enabled():
    """True when operations are recorded on this thread (outside :class:`no_grad`).

    >>> eingrad.autograd.is_grad_enabled()
    True
    """
    return _eingrad._is_grad_enabled()


class detect_anomaly(_DecoratorContextManager):
    """Anomaly mode inside the block: backward checks every gradient an op produces and
    raises a ``RuntimeError`` naming the first op that produced NaN or infinity. Like
    ``torch.autograd.detect_anomaly`` (anomaly mode is process-wide in eingrad).

    >>> with eingrad.autograd.detect_anomaly():
    ...     loss.backward()       # doctest: +SKIP
    """

    def __init__(self, check_nan=True):
        self.check_nan = check_nan

    def _clone(self):
        return self.__class__(self.check_nan)

    def __enter__(self):
        self._prev = _eingrad._set_anomaly_enabled(bool(self.check_nan))

    def __exit__(self, *exc):
        _eingrad._set_anomaly_enabled(self._prev)
        return False


class set_detect_anomaly(_DecoratorContextManager):
    """Turns anomaly mode on or off: immediately, and back to the previous setting at the end
    of the block when used as a context manager. Like ``torch.autograd.set_detect_anomaly``.

    >>> with eingrad.autograd.set_detect_anomaly(True):
    ...     eingrad.autograd.is_anomaly_enabled()
    True
    >>> eingrad.autograd.is_anomaly_enabled()
    False
    """

    def __init__(self, mode, check_nan=True):
        self.mode = bool(mode)
        self.check_nan = check_nan
        self._prev = _eingrad._set_anomaly_enabled(self.mode and bool(check_nan))

    def _clone(self):
        return self.__class__(self.mode, self.check_nan)

    def __call__(self, func):
        _eingrad._set_anomaly_enabled(self._prev)
        return super().__call__(func)

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        _eingrad._set_anomaly_enabled(self._prev)
        return False


def is_anomaly_enabled():
    """True when anomaly mode is on.

    >>> eingrad.autograd.is_anomaly_enabled()
    False
    """
    return _eingrad._is_anomaly_enabled()


# ---------------------------------------------------------------------------------------
# Function
# ---------------------------------------------------------------------------------------


class Function:
    """A differentiable function defined by its ``forward`` and its ``backward``, like
    ``torch.autograd.Function``. Subclass it with static methods and call ``apply``:

    * ``forward(ctx, *args)`` computes the outputs (a tensor or a tuple of tensors) from the
      arguments (tensors and anything else) with recording off; ``ctx.save_for_backward``
      keeps tensors for the backward, other values go on ``ctx`` as attributes;
    * ``backward(ctx, *grad_outputs)`` returns one gradient per argument of ``apply`` (None
      for an argument without one); under ``create_graph`` it runs with recording on, so a
      backward written in eingrad ops is itself differentiable;
    * optionally ``jvp(ctx, *tangents)`` for forward mode (else the backward is transposed).

    Alternatively ``forward(*args)`` without ``ctx`` plus
    ``setup_context(ctx, inputs, output)``, as in PyTorch 2.

    >>> class Exp(eingrad.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         y = eingrad.exp(x)
    ...         ctx.save_for_backward(y)
    ...         return y
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         (y,) = ctx.saved_tensors
    ...         return g * y
    >>> y = Exp.apply(eingrad.zeros(2, requires_grad=True))
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        """Computes the outputs; override it."""
        raise NotImplementedError("Function.forward: define forward in your subclass")

    @staticmethod
    def setup_context(ctx, inputs, output):
        """Saves what backward needs, when ``forward`` does not take ``ctx``; override it."""
        raise NotImplementedError("Function.setup_context: not defined")

    @staticmethod
    def backward(ctx, *grad_outputs):
        """Maps the gradients of the outputs to one gradient per input; override it."""
        raise NotImplementedError("Function.backward: define backward in your subclass")

    vjp = backward

    @staticmethod
    def jvp(ctx, *tangents):
        """Forward-mode rule (optional): one tangent per output."""
        raise NotImplementedError("Function.jvp: not defined")

    @classmethod
    def apply(cls, *args, **kwargs):
        """Runs the function on ``args`` and records it for differentiation."""
        if kwargs:
            raise TypeError(
                f"{cls.__name__}.apply takes positional arguments only, got keywords "
                f"{sorted(kwargs)}"
            )
        uses_setup = cls.setup_context is not Function.setup_context
        if uses_setup:

            def forward(ctx, *a):
                output = cls.forward(*a)
                cls.setup_context(ctx, a, output)
                return output

        else:
            forward = cls.forward
        backward = cls.backward
        if cls.backward is Function.backward and cls.vjp is not Function.vjp:
            backward = cls.vjp
        jvp = None if cls.jvp is Function.jvp else cls.jvp
        ctx = FunctionCtx()
        return _eingrad._function_apply(cls.__name__, forward, backward, jvp, ctx, args)


def once_differentiable(fn):
    """Accepted for PyTorch compatibility: returns ``fn`` unchanged (eingrad's Function
    backwards are differentiable when written in eingrad ops).

    >>> @eingrad.autograd.function.once_differentiable
    ... def backward(ctx, g): return g
    """
    return fn


function = types.ModuleType(
    __name__ + ".function", "Function, FunctionCtx and once_differentiable."
)
function.Function = Function
function.FunctionCtx = FunctionCtx
function.once_differentiable = once_differentiable
sys.modules[function.__name__] = function

graph = types.ModuleType(__name__ + ".graph", "The graph's nodes (tensor.grad_fn).")
graph.Node = _eingrad._Node
sys.modules[graph.__name__] = graph


# ---------------------------------------------------------------------------------------
# functional, gradcheck
# ---------------------------------------------------------------------------------------


class GradcheckError(RuntimeError):
    """Raised by :func:`gradcheck` / :func:`gradgradcheck` when the analytic and numerical
    derivatives disagree (and ``raise_exception`` is on); a ``RuntimeError``.

    >>> try:
    ...     eingrad.autograd.gradcheck(WrongSquare.apply, (x,))
    ... except eingrad.autograd.GradcheckError as e:
    ...     print(e)            # doctest: +SKIP
    """


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, **kwargs):
    """Compares the gradients autograd gives for ``func`` at ``inputs`` (float64 tensors
    that require grad) with central finite differences, like ``torch.autograd.gradcheck``.
    See :func:`eingrad.func.gradcheck`.

    >>> x = eingrad.randn(3, dtype=eingrad.float64, requires_grad=True)
    >>> eingrad.autograd.gradcheck(lambda x: x * x, (x,))
    True
    """
    from .func import gradcheck as _gradcheck

    return _gradcheck(
        func, inputs, eps=eps, atol=atol, rtol=rtol, raise_exception=raise_exception, **kwargs
    )


def gradgradcheck(
    func,
    inputs,
    grad_outputs=None,
    *,
    eps=1e-6,
    atol=1e-5,
    rtol=1e-3,
    raise_exception=True,
    **kwargs,
):
    """Checks second derivatives against finite differences of the first, like
    ``torch.autograd.gradgradcheck``. See :func:`eingrad.func.gradgradcheck`.

    >>> x = eingrad.randn(3, dtype=eingrad.float64, requires_grad=True)
    >>> eingrad.autograd.gradgradcheck(lambda x: x * x * x, (x,))
    True
    """
    from .func import gradgradcheck as _gradgradcheck

    return _gradgradcheck(
        func,
        inputs,
        grad_outputs,
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=raise_exception,
        **kwargs,
    )


def _make_functional():
    from . import func as _func

    mod = types.ModuleType(
        __name__ + ".functional",
        "torch.autograd.functional's jacobian, hessian, vjp, jvp, hvp and vhp.",
    )

    def _inputs(inputs):
        if isinstance(inputs, _eingrad.Tensor):
            return (inputs,), True
        return tuple(inputs), False

    def _maybe_detach(x, create_graph):
        if create_graph:
            return x
        if isinstance(x, tuple):
            return tuple(_maybe_detach(e, create_graph) for e in x)
        return x.detach()

    def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
                 strategy="reverse-mode"):
        """The Jacobian of ``func`` at ``inputs`` (a tensor or a tuple), shaped like
        ``torch.autograd.functional.jacobian``'s result: a tensor for one input and one
        output, else tuples (over outputs, then inputs).

        >>> J = eingrad.autograd.functional.jacobian(lambda x: x * x, eingrad.ones(3))
        >>> J.shape
        (3, 3)
        """
        if strict:
            raise NotImplementedError("jacobian: strict=True is not supported by eingrad")
        del vectorize  # (always vectorised where the ops allow)
        mode = {"reverse-mode": "rev", "forward-mode": "fwd"}.get(strategy)
        if mode is None:
            raise ValueError(
                f'jacobian: strategy must be "reverse-mode" or "forward-mode", got {strategy!r}'
            )
        xs, single_in = _inputs(inputs)
        with set_grad_enabled(True if create_graph else is_grad_enabled()):
            j = _func._jacobian_blocks(func, xs, list(range(len(xs))), mode, "jacobian")
        blocks, single_out = j
        res = _func._nest(blocks, single_out, single_in)
        return _maybe_detach(res, create_graph)

    def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
                outer_jacobian_strategy="reverse-mode"):
        """The Hessian of the scalar ``func`` at ``inputs``: a tensor of shape
        ``x.shape + x.shape`` for one input, else a tuple of tuples of blocks.

        >>> H = eingrad.autograd.functional.hessian(lambda x: (x * x) @ x, eingrad.ones(2))
        >>> H.shape
        (2, 2)
        """
        if strict:
            raise NotImplementedError("hessian: strict=True is not supported by eingrad")
        del vectorize, outer_jacobian_strategy
        xs, single_in = _inputs(inputs)
        argnums = 0 if single_in else tuple(range(len(xs)))
        res = _func.hessian(func, argnums=argnums)(*xs)
        return _maybe_detach(res, create_graph)

    def vjp(func, inputs, v=None, create_graph=False, strict=False):
        """``(func(inputs), vᵀJ)``, like ``torch.autograd.functional.vjp``.

        >>> out, g = eingrad.autograd.functional.vjp(lambda x: x * x, eingrad.ones(2),
        ...                                          eingrad.ones(2))
        """
        if strict:
            raise NotImplementedError("vjp: strict=True is not supported by eingrad")
        xs, single_in = _inputs(inputs)
        with set_grad_enabled(True if create_graph else is_grad_enabled()):
            out, fn = _func.vjp(func, *xs)
            if v is None:
                outs = out if isinstance(out, tuple) else (out,)
                if any(o.numel() != 1 for o in outs):
                    raise RuntimeError(
                        "vjp: v can be omitted only when func returns one-element tensors"
                    )
                v = tuple(_eingrad.ones_like(o) for o in outs)
                if not isinstance(out, tuple):
                    v = v[0]
            g = fn(v)
        g = g[0] if single_in else g
        return _maybe_detach(out, create_graph), _maybe_detach(g, create_graph)

    def jvp(func, inputs, v=None, create_graph=False, strict=False):
        """``(func(inputs), J v)``, like ``torch.autograd.functional.jvp``.

        >>> out, t = eingrad.autograd.functional.jvp(lambda x: x * x, eingrad.ones(2),
        ...                                          eingrad.ones(2))
        """
        if strict:
            raise NotImplementedError("jvp: strict=True is not supported by eingrad")
        xs, single_in = _inputs(inputs)
        if v is None:
            if any(x.numel() != 1 for x in xs):
                raise RuntimeError("jvp: v can be omitted only for one-element inputs")
            v = tuple(_eingrad.ones_like(x) for x in xs)
        vs = (v,) if isinstance(v, _eingrad.Tensor) else tuple(v)
        out, t = _func.jvp(func, xs, vs)
        return _maybe_detach(out, create_graph), _maybe_detach(t, create_graph)

    def hvp(func, inputs, v=None, create_graph=False, strict=False):
        """``(func(inputs), H v)`` for a scalar ``func``, like
        ``torch.autograd.functional.hvp``.

        >>> out, hv = eingrad.autograd.functional.hvp(lambda x: (x * x) @ x,
        ...                                           eingrad.ones(2), eingrad.ones(2))
        """
        if strict:
            raise NotImplementedError("hvp: strict=True is not supported by eingrad")
        xs, single_in = _inputs(inputs)
        if v is None:
            if any(x.numel() != 1 for x in xs):
                raise RuntimeError("hvp: v can be omitted only for one-element inputs")
            v = tuple(_eingrad.ones_like(x) for x in xs)
        vs = (v,) if isinstance(v, _eingrad.Tensor) else tuple(v)
        out, hv = _func.hvp(func, xs, vs)
        hv = hv[0] if single_in else hv
        return _maybe_detach(out, create_graph), _maybe_detach(hv, create_graph)

    def vhp(func, inputs, v=None, create_graph=False, strict=False):
        """``(func(inputs), vᵀ H)``; the Hessian is symmetric, so this equals :func:`hvp`.

        >>> out, vh = eingrad.autograd.functional.vhp(lambda x: (x * x) @ x,
        ...                                           eingrad.ones(2), eingrad.ones(2))
        """
        return hvp(func, inputs, v, create_graph, strict)

    for f in (jacobian, hessian, vjp, jvp, hvp, vhp):
        f.__module__ = mod.__name__
        setattr(mod, f.__name__, f)
    return mod


functional = _make_functional()
sys.modules[functional.__name__] = functional


def Variable(data, requires_grad=False, volatile=False):
    """PyTorch's pre-0.4 wrapper, kept so that old code runs: returns ``data`` itself
    (marked ``requires_grad`` when asked).

    >>> v = eingrad.autograd.Variable(eingrad.ones(2), requires_grad=True)
    >>> v.requires_grad
    True
    """
    del volatile
    if not isinstance(data, _eingrad.Tensor):
        data = _eingrad.tensor(data)
    return data.requires_grad_() if requires_grad else data

