"""The README's Python example runs and computes what it says."""
import pathlib
import re


def test_readme_python_example_runs():
    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    x, w, J, J2, H = (scope[k] for k in ("x", "w", "J", "J2", "H"))
    assert x.grad is not None and x.grad.shape == (4, 3)
    assert J.shape == (4, 2, 4, 3) and scope["torch"].allclose(J, J2)
    assert H.shape == (4, 3, 4, 3)
