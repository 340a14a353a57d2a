"""The type stubs python/eingrad/_eingrad.pyi stay in step with the built native module.

The stub is parsed with `ast` (it is never imported) and compared with `eingrad._eingrad`:
  (a) every name of the native module, private ones included, has a top-level entry;
  (b) every attribute of `Tensor` (and of the other native classes) has an entry in its class;
  (c) no entry outlives its runtime name (typing-only names are `X: TypeAlias = ...` aliases or
      are listed in TYPING_ONLY below, each with its reason);
  (d) parameter names (and their kinds) match `inspect.signature` of the runtime function or
      method, which PyO3 gives from `__text_signature__`.
Each failure names the entries at fault.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from eingrad import _eingrad as native

STUB = Path(__file__).resolve().parents[1] / "eingrad" / "_eingrad.pyi"

# Module attributes every extension module has; they are not the API.
MODULE_DUNDERS = {
    "__all__",
    "__builtins__",
    "__cached__",
    "__doc__",
    "__file__",
    "__loader__",
    "__name__",
    "__package__",
    "__path__",
    "__spec__",
}

# Top-level stub names with no runtime counterpart, besides `X: TypeAlias = ...` aliases.
TYPING_ONLY = {
    "_ValuesIndices": "the (values, indices) named tuple of max/min(dim); at runtime "
    "eingrad.return_types.max / .min, made on first use",
}

# Class members in the stub with no runtime attribute of that name.
TYPING_ONLY_MEMBERS = {
    ("_FunctionCtx", "__getattr__"): "ctx takes any attribute (the runtime class has a __dict__)",
}

# Dunders CPython puts in a class's __dict__ for a slot the class fills for another reason:
# PyO3's __setitem__ fills mp_ass_subscript, which also shows as __delitem__ (it raises).
SLOT_ARTEFACTS = {"__delitem__"}


# ---------------------------------------------------------------------------------------------
# Reading the stub


def _names_in(body: list[ast.stmt]) -> dict[str, list[ast.stmt]]:
    """Name -> the statements that define it (overloads and property setters give several)."""
    out: dict[str, list[ast.stmt]] = {}

    def add(name: str, node: ast.stmt) -> None:
        out.setdefault(name, []).append(node)

    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            add(node.name, node)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            add(node.target.id, node)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    add(target.id, node)
        elif isinstance(node, ast.If):  # `if sys.version_info >= ...:` blocks
            for name, nodes in _names_in(node.body + node.orelse).items():
                out.setdefault(name, []).extend(nodes)
    return out


def _decorators(node: ast.stmt) -> list[str]:
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return []
    return [ast.unparse(d) for d in node.decorator_list]


def _is_type_alias(node: ast.stmt) -> bool:
    return isinstance(node, ast.AnnAssign) and ast.unparse(node.annotation) in {
        "TypeAlias",
        "typing.TypeAlias",
    }


def _is_overload(node: ast.stmt) -> bool:
    return any(d in {"overload", "typing.overload"} for d in _decorators(node))


def _is_property(nodes: list[ast.stmt]) -> bool:
    return any("property" in _decorators(n) for n in nodes)


def _is_data(nodes: list[ast.stmt]) -> bool:
    """An attribute in the stub: a property or an annotated name."""
    return _is_property(nodes) or all(isinstance(n, (ast.AnnAssign, ast.Assign)) for n in nodes)


_TREE = ast.parse(STUB.read_text(encoding="utf-8"), filename=str(STUB))
STUB_TOP = _names_in(_TREE.body)
STUB_CLASSES = {
    name: _names_in(nodes[0].body)
    for name, nodes in STUB_TOP.items()
    if isinstance(nodes[0], ast.ClassDef)
}
RUNTIME_CLASSES = {
    name: obj
    for name in dir(native)
    if isinstance(obj := getattr(native, name), type)
}


def _stub_names() -> set[str]:
    """Top-level stub names meant to exist at runtime."""
    return {
        name
        for name, nodes in STUB_TOP.items()
        if name not in TYPING_ONLY and not all(_is_type_alias(n) for n in nodes)
    }


def _runtime_names() -> set[str]:
    return {name for name in dir(native) if name not in MODULE_DUNDERS}


def _fmt(names) -> str:
    return ", ".join(sorted(names))


# ---------------------------------------------------------------------------------------------
# Parameters: a stub signature from the ast, a runtime one from inspect, in one shape


POS, VAR_POS, KW, VAR_KW = "positional", "*args", "keyword-only", "**kwargs"


def _stub_params(fn: ast.FunctionDef) -> list[tuple[str, str, bool, bool]]:
    """(name, kind, positional_only, has_default) for each parameter, `self` included."""
    a = fn.args
    positional = a.posonlyargs + a.args
    first_default = len(positional) - len(a.defaults)
    out = [
        (arg.arg, POS, i < len(a.posonlyargs), i >= first_default)
        for i, arg in enumerate(positional)
    ]
    if a.vararg:
        out.append((a.vararg.arg, VAR_POS, False, False))
    out += [(arg.arg, KW, False, d is not None) for arg, d in zip(a.kwonlyargs, a.kw_defaults)]
    if a.kwarg:
        out.append((a.kwarg.arg, VAR_KW, False, False))
    return out


_KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: POS,
    inspect.Parameter.POSITIONAL_OR_KEYWORD: POS,
    inspect.Parameter.VAR_POSITIONAL: VAR_POS,
    inspect.Parameter.KEYWORD_ONLY: KW,
    inspect.Parameter.VAR_KEYWORD: VAR_KW,
}


def _runtime_params(obj) -> list[tuple[str, str, bool, bool]] | None:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # no __text_signature__
        return None
    return [
        (
            p.name,
            _KINDS[p.kind],
            p.kind is inspect.Parameter.POSITIONAL_ONLY,
            p.default is not inspect.Parameter.empty,
        )
        for p in sig.parameters.values()
    ]


def _show(params) -> str:
    parts = []
    for name, kind, _, default in params:
        prefix = {VAR_POS: "*", VAR_KW: "**"}.get(kind, "")
        parts.append(prefix + name + ("=…" if default else ""))
    return "(" + ", ".join(parts) + ")"


def _exact_mismatch(stub, runtime) -> str | None:
    """Why a (non-overloaded) stub signature does not match the runtime one, or None.

    Names must agree except where either side is positional-only (PyO3's `self, /`, or a
    stub's `/`) and for `*args` / `**kwargs`; kinds must agree; the stub may not give a default the runtime lacks (the
    opposite, a parameter the stub requires, is allowed: the runtime may reject its absence).
    """
    if len(stub) != len(runtime):
        return f"stub {_show(stub)} vs runtime {_show(runtime)}"
    for s, r in zip(stub, runtime):
        s_name, s_kind, s_posonly, s_default = s
        r_name, r_kind, r_posonly, r_default = r
        free = s_posonly or r_posonly or s_kind in (VAR_POS, VAR_KW)  # never passed by name
        if s_kind != r_kind or (s_name != r_name and not free):
            return f"stub {_show(stub)} vs runtime {_show(runtime)}"
        if s_default and not r_default:
            return f"`{s_name}` has a default in the stub but is required at runtime"
    return None


def _overload_mismatch(stub, runtime) -> str | None:
    """Why one @overload cannot be a way of calling the runtime function, or None."""
    r_pos = [p for p in runtime if p[1] == POS]
    r_var_pos = any(p[1] == VAR_POS for p in runtime)
    r_keywords = {p[0] for p in runtime if p[1] in (POS, KW) and not p[2]}
    r_var_kw = any(p[1] == VAR_KW for p in runtime)
    for i, (name, kind, posonly, _) in enumerate(p for p in stub if p[1] == POS):
        if i >= len(r_pos):
            if not r_var_pos:
                return f"positional `{name}` has no runtime parameter at position {i}"
        elif not posonly and not r_pos[i][2] and r_pos[i][0] != name:
            return f"`{name}` is `{r_pos[i][0]}` at runtime"
    for name, kind, _, _ in stub:
        if kind == VAR_POS and not r_var_pos:
            return f"`*{name}` but the runtime takes no *args"
        if kind == KW and name not in r_keywords and not r_var_kw:
            return f"keyword `{name}` is not a runtime parameter"
        if kind == VAR_KW and not r_var_kw:
            return f"`**{name}` but the runtime takes no **kwargs"
    return None


def _signature_problems(label: str, nodes: list[ast.stmt], obj) -> list[str]:
    runtime = _runtime_params(obj)
    if runtime is None:
        return []
    fns = [n for n in nodes if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    problems = []
    if fns and all(_is_overload(n) for n in fns):
        for k, fn in enumerate(fns):
            why = _overload_mismatch(_stub_params(fn), runtime)
            if why:
                problems.append(f"{label} (overload {k + 1}): {why}")
    elif len(fns) == 1:
        why = _exact_mismatch(_stub_params(fns[0]), runtime)
        if why:
            problems.append(f"{label}: {why}")
    return problems


# ---------------------------------------------------------------------------------------------
# The tests


def test_stub_parses_and_has_no_duplicates():
    duplicates = []
    scopes = [("", STUB_TOP)] + [(f"{c}.", members) for c, members in STUB_CLASSES.items()]
    for prefix, names in scopes:
        for name, nodes in names.items():
            if len(nodes) < 2:
                continue
            if all(_is_overload(n) for n in nodes):
                continue
            decorators = [_decorators(n) for n in nodes]
            if decorators[0] == ["property"] and all(
                d in ([f"{name}.setter"], [f"{name}.deleter"]) for d in decorators[1:]
            ):
                continue
            duplicates.append(prefix + name)
    assert not duplicates, f"defined more than once in {STUB.name}: {_fmt(duplicates)}"


def test_every_runtime_name_has_a_stub():
    missing = _runtime_names() - set(STUB_TOP)
    assert not missing, f"native names with no entry in {STUB.name}: {_fmt(missing)}"


def test_no_stale_top_level_stub_entries():
    stale = _stub_names() - _runtime_names()
    assert not stale, (
        f"entries in {STUB.name} with no runtime name in eingrad._eingrad: {_fmt(stale)} "
        "(remove them, or make them `X: TypeAlias = ...` / add to TYPING_ONLY if typing-only)"
    )
    unused = set(TYPING_ONLY) - set(STUB_TOP)
    assert not unused, f"TYPING_ONLY names no longer in the stub: {_fmt(unused)}"


def _runtime_members(cls: type, with_dunders: bool) -> set[str]:
    names = {n for n in dir(cls) if not n.startswith("__")}
    if with_dunders:  # the dunders the class itself defines: its operators and protocols
        names |= {
            n
            for n, v in vars(cls).items()
            if n.startswith("__") and callable(v) and n not in SLOT_ARTEFACTS
        }
    return names


def test_every_tensor_attribute_has_a_stub():
    missing = _runtime_members(native.Tensor, with_dunders=True) - set(STUB_CLASSES["Tensor"])
    assert not missing, f"Tensor attributes with no entry in the stub's class Tensor: {_fmt(missing)}"


@pytest.mark.parametrize("cls", sorted(set(RUNTIME_CLASSES) - {"Tensor"}))
def test_every_attribute_of_the_other_classes_has_a_stub(cls):
    assert cls in STUB_CLASSES, f"{cls} is a class at runtime but not in the stub"
    missing = _runtime_members(RUNTIME_CLASSES[cls], with_dunders=False) - set(STUB_CLASSES[cls])
    assert not missing, f"{cls} attributes with no entry in the stub's class {cls}: {_fmt(missing)}"


def test_no_stale_class_members():
    stale = []
    for cls, members in STUB_CLASSES.items():
        if cls in TYPING_ONLY:
            continue
        runtime = RUNTIME_CLASSES.get(cls)
        if runtime is None:
            continue  # the whole class is reported by test_no_stale_top_level_stub_entries
        stale += [
            f"{cls}.{name}"
            for name in members
            if not hasattr(runtime, name) and (cls, name) not in TYPING_ONLY_MEMBERS
        ]
    assert not stale, (
        f"class members in {STUB.name} with no runtime attribute: {_fmt(stale)} "
        "(remove them, or add to TYPING_ONLY_MEMBERS with the reason)"
    )


def test_methods_and_attributes_are_stubbed_as_such():
    """A runtime method is a `def` in the stub; a runtime property or field is a property or an
    annotated name (so that `t.shape` is not typed as a bound method, nor `t.numel` as an int)."""
    wrong = []
    for cls, members in STUB_CLASSES.items():
        runtime = RUNTIME_CLASSES.get(cls)
        if runtime is None:
            continue
        for name, nodes in members.items():
            if name.startswith("__") or not hasattr(runtime, name):
                continue
            raw = inspect.getattr_static(runtime, name)
            is_data = inspect.isdatadescriptor(raw) or not callable(raw)
            if is_data != _is_data(nodes):
                want = "an attribute or property" if is_data else "a method"
                wrong.append(f"{cls}.{name} (runtime: {want})")
    assert not wrong, f"stubbed as the wrong kind of member: {'; '.join(sorted(wrong))}"


def test_top_level_parameter_names_match_the_runtime():
    problems = []
    for name, nodes in STUB_TOP.items():
        if name not in _stub_names() or not hasattr(native, name):
            continue
        obj = getattr(native, name)
        if isinstance(obj, type):
            continue
        problems += _signature_problems(name, nodes, obj)
    assert not problems, "stub signatures that differ from the runtime:\n  " + "\n  ".join(problems)


def test_method_aliases_are_the_runtime_methods():
    """`exp = Tensor.exp` in the stub says eingrad.exp is the method itself: check it is."""
    wrong = []
    for name, nodes in STUB_TOP.items():
        for node in nodes:
            if not isinstance(node, ast.Assign) or not hasattr(native, name):
                continue
            value = node.value
            if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name):
                cls = RUNTIME_CLASSES.get(value.value.id)
                if cls is None or getattr(native, name) is not getattr(cls, value.attr, None):
                    wrong.append(f"{name} = {ast.unparse(value)}")
    assert not wrong, f"aliases in {STUB.name} that are other objects at runtime: {_fmt(wrong)}"


def test_method_parameter_names_match_the_runtime():
    problems = []
    for cls, members in STUB_CLASSES.items():
        runtime = RUNTIME_CLASSES.get(cls)
        if runtime is None:
            continue
        for name, nodes in members.items():
            # Dunders are called by operators, not by keyword; PyO3 names their parameters
            # `value` and gives `__new__` only (*args, **kwargs).
            if name.startswith("__") or _is_data(nodes) or not hasattr(runtime, name):
                continue
            problems += _signature_problems(f"{cls}.{name}", nodes, getattr(runtime, name))
    assert not problems, "stub method signatures that differ from the runtime:\n  " + "\n  ".join(
        problems
    )


def test_the_package_is_marked_typed():
    assert (STUB.parent / "py.typed").is_file(), "python/eingrad/py.typed is missing (PEP 561)"



def _annotation_exprs(node: ast.stmt) -> list[ast.expr]:
    """The type expressions of a statement: parameter and return annotations, the annotation
    of `x: T`, and the value of a `X: TypeAlias = ...` alias."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        a = node.args
        args = a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]
        return [x.annotation for x in args if x.annotation] + ([node.returns] if node.returns else [])
    if isinstance(node, ast.AnnAssign):
        return [node.value] if _is_type_alias(node) and node.value else [node.annotation]
    return []


def test_annotations_name_types_not_members():
    """Every name in an annotation is defined (stub, import or builtin), and none inside a class
    is one of that class's members: in `class Tensor`, a bare `float` or `dtype` would be the
    method `Tensor.float` or the property `Tensor.dtype` to a type checker (hence `_float`,
    `_dtype`); and at module level `float` is eingrad's dtype, `max` eingrad's function."""
    import builtins

    imported = set()
    for node in _TREE.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
    shadowed = set(STUB_TOP) & set(dir(builtins))
    known = set(STUB_TOP) | imported | set(dir(builtins))
    bad = []
    scopes = [("", STUB_TOP)] + [(f"{c}.", m) for c, m in STUB_CLASSES.items()]
    for prefix, members in scopes:
        for name, nodes in members.items():
            used = {
                n.id
                for node in nodes
                for e in _annotation_exprs(node)
                for n in ast.walk(e)
                if isinstance(n, ast.Name)
            }
            for u in sorted(used):
                if u not in known:
                    bad.append(f"{prefix}{name}: `{u}` is not defined")
                elif prefix and u in members:
                    bad.append(f"{prefix}{name}: `{u}` names the member {prefix}{u}")
                elif u in shadowed:
                    bad.append(f"{prefix}{name}: `{u}` is eingrad's {u}, not the builtin")
    assert not bad, "annotations that do not name the intended type:\n  " + "\n  ".join(sorted(bad))
