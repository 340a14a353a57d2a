"""Every `>>>` example in the package's docstrings runs and shows what it prints: the native
module's functions and Tensor methods, and the pure-Python modules."""
import doctest
import importlib
import inspect

import numpy as np

import eingrad

# (the top-level `eingrad` re-exports the native module, whose examples the first test runs)
MODULES = ["eingrad.autograd", "eingrad.func", "eingrad.nn", "eingrad.nn.modules", "eingrad.nn.parameter",
           "eingrad.nn.functional", "eingrad.nn.init", "eingrad.nn.utils", "eingrad.optim",
           "eingrad._lr_scheduler", "eingrad.io"]
# (the classes of `eingrad.nn.modules` live in its submodules, where the finder looks for them)
MODULES += [f"eingrad.nn.modules.{m}" for m in (
    "module", "container", "linear", "flatten", "conv", "sparse", "batchnorm", "normalization",
    "dropout", "activation", "loss", "transformer")]


def _native_objects():
    native = eingrad._eingrad
    objs = [(f"Tensor.{n}", o) for n, o in vars(eingrad.Tensor).items() if callable(o) or isinstance(o, property)]
    objs += [(n, o) for n, o in vars(native).items() if callable(o)]
    for n, cls in vars(native).items():
        if inspect.isclass(cls) and cls is not eingrad.Tensor:
            objs += [(f"{n}.{m}", o) for m, o in vars(cls).items() if callable(o)]
    return objs


def _run(name, doc, globs, runner):
    doc = (doc or "").replace("```python", "").replace("```", "")
    if ">>>" not in doc:
        return
    test = doctest.DocTestParser().get_doctest(doc, dict(globs), name, None, 0)
    runner.run(test)


def test_native_docstring_examples():
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    globs = {"eingrad": eingrad, "np": np}
    for name, obj in _native_objects():
        _run(name, getattr(obj, "__doc__", None), globs, runner)
    res = runner.summarize(verbose=False)
    assert res.attempted > 150, res
    assert res.failed == 0, f"{res.failed} of {res.attempted} native docstring examples failed (printed above)"


def test_python_module_docstring_examples():
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    finder = doctest.DocTestFinder()
    for mod_name in MODULES:
        mod = importlib.import_module(mod_name)
        for test in finder.find(mod, mod_name, globs={"eingrad": eingrad, "np": np}):
            if not test.name.startswith("eingrad.func.VerifyReport"):  # native, run above
                runner.run(test)
    res = runner.summarize(verbose=False)
    assert res.attempted > 50, res
    assert res.failed == 0, f"{res.failed} of {res.attempted} module docstring examples failed (printed above)"
