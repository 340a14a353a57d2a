"""eingrad.func: function transforms under ``torch.func``'s names, and derivative checks.

* :func:`vjp`, :func:`jvp`, :func:`grad`, :func:`grad_and_value`
* :func:`jacrev`, :func:`jacfwd` (Jacobians by rows / by columns), :func:`jacobian`,
  :func:`hessian`, :func:`hvp`, and :func:`einsum_jacobian` (the closed form of an einsum's
  Jacobian)
* :func:`gradcheck`, :func:`gradgradcheck` (against finite differences) and
  :func:`verify_backward` (a hand-written derivative against a reference, with a report)

``func`` is any Python callable of eingrad tensors returning a tensor or a tuple of tensors.
The transforms run in Rust with the GIL released and call ``func`` back; an exception it
raises propagates unchanged. Transforms compose: ``jacfwd(jacrev(f))`` is a Hessian.

>>> import eingrad
>>> from eingrad.func import jacrev
>>> jacrev(lambda x: x * x)(eingrad.tensor([1., 2.]))
tensor([[2., 0.],
        [0., 4.]])
"""

from . import _eingrad
from . import autograd as _autograd

__all__ = [
    "vjp",
    "jvp",
    "grad",
    "grad_and_value",
    "jacrev",
    "jacfwd",
    "jacobian",
    "hessian",
    "hvp",
    "einsum_jacobian",
    "verify_backward",
    "VerifyReport",
    "gradcheck",
    "gradgradcheck",
]

Tensor = _eingrad.Tensor
VerifyReport = _eingrad._VerifyReport


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _argnums(argnums, nargs, op):
    """``argnums`` (an int or a tuple of ints, negative counting from the end) as a list of
    positions, and whether it was a single int."""
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    if not nums:
        raise ValueError(f"{op}: argnums must not be empty")
    out = []
    for a in nums:
        if not isinstance(a, int):
            raise TypeError(f"{op}: argnums must be an int or a tuple of ints, got {argnums!r}")
        p = a + nargs if a < 0 else a
        if not 0 <= p < nargs:
            raise ValueError(
                f"{op}: argnums {a} is out of range for a function called with {nargs} "
                "positional arguments"
            )
        out.append(p)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: argnums {argnums!r} repeats an argument")
    return out, single


def _outputs(out, op):
    """A tensor or a tuple of tensors as a list, and whether it was a single tensor."""
    if isinstance(out, Tensor):
        return [out], True
    if isinstance(out, (tuple, list)) and out and all(isinstance(o, Tensor) for o in out):
        return list(out), False
    raise TypeError(
        f"{op}: the function must return a Tensor or a tuple of Tensors, it returned "
        f"{type(out).__name__} {out!r:.80}"
    )


def _detach_tree(x):
    if isinstance(x, Tensor):
        return x.detach()
    if isinstance(x, tuple):
        return tuple(_detach_tree(e) for e in x)
    if isinstance(x, list):
        return [_detach_tree(e) for e in x]
    if isinstance(x, dict):
        return {k: _detach_tree(v) for k, v in x.items()}
    return x


def _split_aux(func, has_aux, box, op):
    """``func`` returning ``(output, aux)`` as a function returning ``output`` (the aux goes
    to ``box``)."""
    if not has_aux:
        return func

    def without_aux(*args):
        r = func(*args)
        if not (isinstance(r, tuple) and len(r) == 2):
            raise RuntimeError(
                f"{op}: with has_aux=True the function must return a tuple (output, aux), "
                f"it returned {type(r).__name__}"
            )
        box.append(r[1])
        return r[0]

    return without_aux


def _nest(blocks, single_out, single_in):
    """Jacobian blocks ``blocks[i][j]`` (output i, input j) as torch nests them: a tensor for
    one output and one input, else tuples (outputs outside, inputs inside)."""
    rows = [r[0] if single_in else tuple(r) for r in blocks]
    return rows[0] if single_out else tuple(rows)


def _jacobian_blocks(func, args, positions, mode, op):
    return _eingrad._func_jacobian(func, tuple(args), list(positions), mode, op)


# ---------------------------------------------------------------------------------------
# vjp / grad
# ---------------------------------------------------------------------------------------


def vjp(func, *primals, has_aux=False):
    """Runs ``func(*primals)`` and returns ``(output, vjp_fn)`` (plus ``aux`` with
    ``has_aux``), like ``torch.func.vjp``. ``vjp_fn(cotangents)`` (one cotangent per output,
    shaped like it) returns one vector–Jacobian product per primal, as a tuple; it can be
    called several times. A primal that ``func`` does not use gets zeros. When a primal is
    itself tracked (requires grad, grad mode on), the results are differentiable.

    >>> out, vjp_fn = eingrad.func.vjp(lambda x: x * x, eingrad.tensor([1., 2.]))
    >>> vjp_fn(eingrad.ones(2))
    (tensor([2., 4.]),)
    """
    if not primals:
        raise ValueError("vjp: at least one primal is needed")
    for i, p in enumerate(primals):
        if not isinstance(p, Tensor):
            raise TypeError(f"vjp: primal {i} must be a Tensor, got {type(p).__name__}")
    nested = _autograd.is_grad_enabled() and any(p.requires_grad for p in primals)
    with _autograd.enable_grad():
        # A tracked primal gets a recorded alias (a graph slot of its own whose gradient
        # flows on to the primal); the others a fresh leaf.
        leaves = [
            p * 1.0 if nested and p.requires_grad else p.detach().requires_grad_()
            for p in primals
        ]
        box = []
        out = _split_aux(func, has_aux, box, "vjp")(*leaves)
    outs, single = _outputs(out, "vjp")

    def vjp_fn(*cotangents, retain_graph=True, create_graph=None):
        if len(cotangents) == 1 and not single and isinstance(cotangents[0], (tuple, list)):
            cotangents = tuple(cotangents[0])
        if len(cotangents) != len(outs):
            raise ValueError(
                f"vjp: the function returned {len(outs)} outputs but {len(cotangents)} "
                "cotangents were given"
            )
        for i, (c, o) in enumerate(zip(cotangents, outs)):
            if not isinstance(c, Tensor):
                raise TypeError(f"vjp: cotangent {i} must be a Tensor, got {type(c).__name__}")
            if c.shape != o.shape:
                raise ValueError(
                    f"vjp: cotangent {i} has shape {c.shape} but output {i} has shape {o.shape}"
                )
        if create_graph is None:
            create_graph = _autograd.is_grad_enabled() and (
                nested or any(c.requires_grad for c in cotangents)
            )
        pairs = [(o, c) for o, c in zip(outs, cotangents) if o.requires_grad]
        if not pairs:
            return tuple(_eingrad.zeros_like(x) for x in leaves)
        gs = _autograd.grad(
            [o for o, _ in pairs],
            leaves,
            [c for _, c in pairs],
            retain_graph=retain_graph,
            create_graph=create_graph,
            allow_unused=True,
        )
        return tuple(_eingrad.zeros_like(x) if g is None else g for g, x in zip(gs, leaves))

    result = out if nested else _detach_tree(out)
    if has_aux:
        return result, vjp_fn, _detach_tree(box[0])
    return result, vjp_fn


def grad_and_value(func, argnums=0, has_aux=False):
    """A function returning ``(gradient, value)`` of the scalar ``func`` with respect to the
    arguments ``argnums`` (``((gradient, (value, aux))`` with ``has_aux``), like
    ``torch.func.grad_and_value``.

    >>> g, v = eingrad.func.grad_and_value(lambda x: x @ x)(eingrad.tensor([1., 2.]))
    >>> g, v
    (tensor([2., 4.]), tensor(5.))
    """

    def wrapper(*args, **kwargs):
        positions, single = _argnums(argnums, len(args), "grad")

        def of_selected(*sel):
            a = list(args)
            for p, s in zip(positions, sel):
                a[p] = s
            return func(*a, **kwargs)

        r = vjp(of_selected, *[args[p] for p in positions], has_aux=has_aux)
        out, fn = r[0], r[1]
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError(
                "grad: the function must return a one-element Tensor, it returned "
                + (f"shape {out.shape}" if isinstance(out, Tensor) else type(out).__name__)
            )
        gs = fn(_eingrad.ones_like(out))
        g = gs[0] if single else gs
        return (g, (out, r[2])) if has_aux else (g, out)

    return wrapper


def grad(func, argnums=0, has_aux=False):
    """A function returning the gradient of the scalar ``func`` with respect to the
    arguments ``argnums``, like ``torch.func.grad`` (with ``has_aux``: ``(gradient, aux)``).

    >>> eingrad.func.grad(lambda x: x @ x)(eingrad.tensor([1., 2.]))
    tensor([2., 4.])
    """
    gv = grad_and_value(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        g, v = gv(*args, **kwargs)
        return (g, v[1]) if has_aux else g

    return wrapper


# ---------------------------------------------------------------------------------------
# jvp / Jacobians / Hessians
# ---------------------------------------------------------------------------------------


def jvp(func, primals, tangents, *, strict=False, has_aux=False):
    """Forward mode, like ``torch.func.jvp``: ``(func(*primals), J · tangents)`` (plus
    ``aux`` with ``has_aux``); the second is shaped like the output (a tensor or a tuple).

    >>> out, t = eingrad.func.jvp(lambda x: x * x, (eingrad.tensor([1., 2.]),),
    ...                           (eingrad.ones(2),))
    >>> t
    tensor([2., 4.])
    """
    del strict
    if isinstance(primals, Tensor) or isinstance(tangents, Tensor):
        raise TypeError("jvp: primals and tangents must be tuples of Tensors (as in torch.func)")
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    box = []
    f = _split_aux(func, has_aux, box, "jvp")
    outs, touts, single = _eingrad._func_jvp(f, primals, list(range(len(primals))), tangents)
    out = outs[0] if single else tuple(outs)
    t = touts[0] if single else tuple(touts)
    if has_aux:
        return out, t, _detach_tree(box[0])
    return out, t


def _jac(func, argnums, has_aux, mode, op):
    def wrapper(*args):
        positions, single_in = _argnums(argnums, len(args), op)
        box = []
        f = _split_aux(func, has_aux, box, op)
        blocks, single_out = _jacobian_blocks(f, args, positions, mode, op)
        j = _nest(blocks, single_out, single_in)
        return (j, _detach_tree(box[0])) if has_aux else j

    return wrapper


def jacrev(func, argnums=0, *, has_aux=False, chunk_size=None):
    """A function computing the Jacobian of ``func`` with respect to the arguments
    ``argnums`` by rows (reverse mode, batched), like ``torch.func.jacrev``: for output
    ``o`` and input ``x`` a block of shape ``o.shape + x.shape``; tuples (outputs outside,
    argnums inside) when ``func`` returns a tuple or ``argnums`` is one.

    >>> eingrad.func.jacrev(lambda x, y: x * y, argnums=1)(eingrad.ones(2), eingrad.ones(2))
    tensor([[1., 0.],
            [0., 1.]])
    """
    del chunk_size
    return _jac(func, argnums, has_aux, "rev", "jacrev")


def jacfwd(func, argnums=0, has_aux=False, *, randomness="error"):
    """Like :func:`jacrev` but by columns (forward mode), like ``torch.func.jacfwd``;
    cheaper when the inputs are smaller than the outputs.

    >>> eingrad.func.jacfwd(lambda x: x * x)(eingrad.tensor([1., 2.]))
    tensor([[2., 0.],
            [0., 4.]])
    """
    del randomness
    return _jac(func, argnums, has_aux, "fwd", "jacfwd")


def jacobian(func, inputs, mode="rev"):
    """The Jacobian of ``func`` at ``inputs`` (a tensor, or a tuple passed as separate
    arguments), nested like ``torch.autograd.functional.jacobian``'s result. ``mode``:
    ``"rev"`` (by rows), ``"fwd"`` (by columns) or ``"auto"`` (per input, whichever is
    cheaper).

    >>> eingrad.func.jacobian(lambda x: x * x, eingrad.tensor([1., 2.]), mode="fwd")
    tensor([[2., 0.],
            [0., 4.]])
    """
    single_in = isinstance(inputs, Tensor)
    xs = (inputs,) if single_in else tuple(inputs)
    blocks, single_out = _jacobian_blocks(func, xs, range(len(xs)), mode, "jacobian")
    return _nest(blocks, single_out, single_in)


def hessian(func, argnums=0):
    """A function computing the Hessian of the scalar ``func`` with respect to the argument
    ``argnums`` (shape ``x.shape + x.shape``; forward over reverse), like
    ``torch.func.hessian``. A tuple ``argnums`` gives a tuple of tuples of blocks.

    >>> eingrad.func.hessian(lambda x: (x * x) @ x)(eingrad.tensor([1., 2.]))
    tensor([[ 6.,  0.],
            [ 0., 12.]])
    """
    if not isinstance(argnums, int):
        return jacfwd(jacrev(func, argnums), argnums)

    def wrapper(*args):
        (p,), _ = _argnums(argnums, len(args), "hessian")
        return _eingrad._func_hessian(func, tuple(args), p)

    return wrapper


def hvp(func, primals, tangents):
    """``(func(*primals), H · tangents)`` for a scalar ``func`` (reverse over reverse); the
    second is a tuple with one entry per primal.

    >>> out, (hv,) = eingrad.func.hvp(lambda x: (x * x) @ x, (eingrad.tensor([1., 2.]),),
    ...                               (eingrad.tensor([1., 0.]),))
    >>> hv
    tensor([6., 0.])
    """
    primals = (primals,) if isinstance(primals, Tensor) else tuple(primals)
    tangents = (tangents,) if isinstance(tangents, Tensor) else tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"hvp: {len(primals)} primals but {len(tangents)} tangents")
    if len(primals) == 1:
        out, hv = _eingrad._func_hvp(func, primals, 0, tangents[0])
        return out, (hv,)
    # Several primals: the gradient recorded, then one reverse pass through it.
    for i, (p, t) in enumerate(zip(primals, tangents)):
        if not isinstance(p, Tensor) or not isinstance(t, Tensor):
            raise TypeError(f"hvp: primal and tangent {i} must be Tensors")
        if p.shape != t.shape:
            raise ValueError(
                f"hvp: tangent {i} has shape {t.shape} but primal {i} has shape {p.shape}"
            )
    with _autograd.enable_grad():
        xs = [p.detach().requires_grad_() for p in primals]
        out = func(*xs)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("hvp: the function must return a one-element Tensor")
        gs = _autograd.grad(out, xs, create_graph=True, allow_unused=True)
        pairs = [(g, t) for g, t in zip(gs, tangents) if g is not None and g.requires_grad]
        if pairs:
            hv = _autograd.grad(
                [g for g, _ in pairs], xs, [t for _, t in pairs], allow_unused=True
            )
        else:
            hv = [None] * len(xs)
    return out.detach(), tuple(
        _eingrad.zeros_like(x) if h is None else h for h, x in zip(hv, xs)
    )


def einsum_jacobian(pattern, operands, k):
    """∂z/∂operands[k] for ``z = einsum(pattern, *operands)`` in closed form: returns
    ``(J, jacobian_pattern)`` where ``J`` (shape ``z.shape + operands[k].shape``) is one
    einsum of the other operands and ``jacobian_pattern`` is that einsum's pattern (other
    operands' terms ``->`` output labels followed by operand k's). Nothing larger than ``J``
    is built; ``J`` is differentiable with respect to the other operands.

    >>> x, w = eingrad.randn(2, 3), eingrad.randn(3, 4)
    >>> J, p = eingrad.func.einsum_jacobian("ij,jk->ik", (x, w), 0)
    >>> J.shape, p
    ((2, 4, 2, 3), 'jk->ikij')
    """
    return _eingrad._func_einsum_jacobian(pattern, operands, k)


# ---------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------


def verify_backward(
    custom,
    reference,
    inputs,
    *,
    atol=None,
    rtol=None,
    random_cotangents=4,
    max_one_hot=64,
    one_hot_samples=16,
    finite_differences=False,
    fd_eps=1e-6,
    fd_atol=1e-6,
    fd_rtol=1e-4,
    seed=0,
):
    """Checks a hand-written derivative: runs ``custom(*inputs)`` (e.g. a
    :class:`eingrad.autograd.Function`) and ``reference(*inputs)`` (plain ops) and compares
    their outputs and their vector–Jacobian products for random and one-hot cotangents (and,
    with ``finite_differences``, the custom gradients with central differences of the
    reference; float64 only). Returns a :class:`VerifyReport`: ``.passed``, ``.checks``, and
    a table when printed. Default tolerances: 1e-10/1e-8 (float64), 1e-5/1e-4 (float32).

    >>> x = eingrad.randn(4, dtype=eingrad.float64)
    >>> r = eingrad.func.verify_backward(lambda x: x * x, lambda x: x ** 2, (x,))
    >>> r.passed
    True
    """
    return _eingrad._func_verify_backward(
        custom,
        reference,
        inputs,
        atol,
        rtol,
        random_cotangents,
        max_one_hot,
        one_hot_samples,
        finite_differences,
        fd_eps,
        fd_atol,
        fd_rtol,
        seed,
    )


def _check_positions(inputs, op):
    args = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    positions = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    if not positions:
        raise ValueError(f"{op}: expects at least one input tensor to require gradient")
    return args, positions


_TORCH_ONLY_OPTIONS = {
    "nondet_tol",
    "check_undefined_grad",
    "check_grad_dtypes",
    "check_batched_grad",
    "check_batched_forward_grad",
    "check_forward_ad",
    "check_backward_ad",
    "fast_mode",
    "masked",
    "gen_non_contig_grad_outputs",
}


def _check_options(kwargs, op):
    unknown = set(kwargs) - _TORCH_ONLY_OPTIONS
    if unknown:
        raise TypeError(f"{op}: unexpected keyword arguments {sorted(unknown)}")


def _verdict(result, raise_exception, op):
    passed, max_abs_err, worst = result
    if passed:
        return True
    if raise_exception:
        raise _autograd.GradcheckError(
            f"{op}: Jacobian mismatch between analytic and numerical derivatives; worst "
            f"entry {worst} (max abs error {max_abs_err:.3e})"
        )
    return False


def gradcheck(
    func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0, **kwargs
):
    """Compares the gradients autograd gives for ``func`` at ``inputs`` (float64 tensors;
    those that require grad are checked, other arguments passed as they are) with central
    finite differences, like ``torch.autograd.gradcheck``: the full Jacobian for small
    inputs, random directions for large ones. Returns True, or raises
    ``eingrad.autograd.GradcheckError`` naming the worst entry (False with
    ``raise_exception=False``). PyTorch-only options (``check_forward_ad``, ...) are accepted
    and ignored.

    >>> x = eingrad.randn(3, dtype=eingrad.float64, requires_grad=True)
    >>> eingrad.func.gradcheck(lambda x: x * x, (x,))
    True
    """
    _check_options(kwargs, "gradcheck")
    args, positions = _check_positions(inputs, "gradcheck")
    r = _eingrad._func_gradcheck(func, args, positions, eps, atol, rtol, False, seed)
    return _verdict(r, raise_exception, "gradcheck")


def gradgradcheck(
    func,
    inputs,
    grad_outputs=None,
    *,
    eps=1e-6,
    atol=1e-5,
    rtol=1e-3,
    raise_exception=True,
    seed=0,
    **kwargs,
):
    """Checks second derivatives, like ``torch.autograd.gradgradcheck``: :func:`gradcheck`
    of ``x ↦ vjp(func, x)(u)`` (built with ``create_graph``) for the cotangents
    ``grad_outputs`` (random when None), with tolerances ten times looser.

    >>> x = eingrad.randn(3, dtype=eingrad.float64, requires_grad=True)
    >>> eingrad.func.gradgradcheck(lambda x: x * x * x, (x,))
    True
    """
    _check_options(kwargs, "gradgradcheck")
    args, positions = _check_positions(inputs, "gradgradcheck")
    if grad_outputs is None:
        r = _eingrad._func_gradcheck(func, args, positions, eps, atol, rtol, True, seed)
        return _verdict(r, raise_exception, "gradgradcheck")
    cots = (grad_outputs,) if isinstance(grad_outputs, Tensor) else tuple(grad_outputs)

    def first(*a):
        outs, _ = _outputs(func(*a), "gradgradcheck")
        if len(outs) != len(cots):
            raise ValueError(
                f"gradgradcheck: {len(cots)} grad_outputs for {len(outs)} outputs"
            )
        xs = [a[p] for p in positions]
        pairs = [(o, c) for o, c in zip(outs, cots) if o.requires_grad]
        if not pairs:
            return tuple(_eingrad.zeros_like(x) for x in xs)
        gs = _autograd.grad(
            [o for o, _ in pairs], xs, [c for _, c in pairs], create_graph=True,
            allow_unused=True,
        )
        return tuple(_eingrad.zeros_like(x) if g is None else g for g, x in zip(gs, xs))

    r = _eingrad._func_gradcheck(
        first, args, positions, eps, atol * 10.0, rtol * 10.0, False, seed
    )
    return _verdict(r, raise_exception, "gradgradcheck")
