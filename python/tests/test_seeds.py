"""The five seeds as Python scripts (examples/python/seed_00N.py): each runs, asserts its own
numbers, prints them, and ends with a PASS line; here the printed numbers are checked too."""
import pathlib
import subprocess
import sys

import pytest

SEEDS = pathlib.Path(__file__).resolve().parents[2] / "examples" / "python"


def run_seed(n):
    script = SEEDS / f"seed_{n:03d}.py"
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert f"seed {n:03d}: PASS" in proc.stdout
    return proc.stdout


def test_seed_000_pooling_jacobian():
    out = run_seed(0)
    # the Jacobian row printed for bar[0, 6, 3], and the -2 scaling
    assert "-0.1875, -0.1250" in out
    assert "-0.1250,  0.2500," in out  # the -2-scaled Jacobian, row 7
    assert "autograd.functional.jacobian gives the same matrix: True" in out


def test_seed_001_dni():
    out = run_seed(1)
    assert "(2/B)(sg - g)" in out
    assert "defer_backward: one combined backward; nesting refused; state reset" in out
    accs = [float(line.rsplit(" ", 1)[1]) for line in out.splitlines() if "test accuracy" in line]
    assert len(accs) == 3 and accs[0] > 0.85 and min(accs[1:]) > 0.75


def test_seed_002_decay_matrix():
    out = run_seed(2)
    for line in ("Forward match: True", "igate preact match: True", "fgate pract match: True"):
        assert line in out
    assert "-2.1250, -3.5962, -0.4043, -2.0680,  0.8248" in out
    assert "dmat.sum() = -inf" in out


def test_seed_003_einsum_jacobian():
    out = run_seed(3)
    assert "[True, True, True, True]" in out
    assert "jacobian (2, 4, 2, 3)" in out and "jacobian (5, 3, 9, 5, 3, 8)" in out


def test_seed_004_conv_partials():
    out = run_seed(4)
    assert "standard conv1d: output length 8 (n - k + 1 = 8), 80 partial derivatives" in out
    assert "left-padded conv1d: output length 10 (n = 10), 80 partial derivatives" in out


@pytest.mark.parametrize("n", range(5))
def test_seed_scripts_list_their_changed_lines(n):
    text = (SEEDS / f"seed_{n:03d}.py").read_text()
    assert "with these lines changed" in text and "import eingrad as torch" in text
