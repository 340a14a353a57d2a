#!/usr/bin/env python3
"""Writes tests/golden/display.json: how PyTorch prints tensors, for tests/display.rs.

Each case holds a shape, the exact values (row-major), the dtype eingrad builds, whether the
tensor is a leaf that requires grad, and PyTorch's `str(tensor)`. The default dtype is set to
the case's dtype, so PyTorch prints no `dtype=` suffix (eingrad names float64 `float64`, not
`torch.float64`; tests/display.rs checks that suffix by hand).

Run from the crate root:  /work/ref-venv/bin/python scripts/golden_display.py
The tests never run Python; they read the JSON file this script writes.
"""
import json
import math
import os

import numpy as np
import torch

RNG = np.random.default_rng(20261123)


def enc(v):
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


CASES = []


def case(name, values, dtype="f32", requires_grad=False):
    tdt = torch.float32 if dtype == "f32" else torch.float64
    torch.set_default_dtype(tdt)
    t = torch.as_tensor(np.asarray(values), dtype=tdt)
    if requires_grad:
        t.requires_grad_(True)
    flat = t.detach().reshape(-1).tolist()
    CASES.append(
        {
            "name": name,
            "shape": list(t.shape),
            "dtype": dtype,
            "requires_grad": requires_grad,
            "values": [enc(v) for v in flat],
            "torch": str(t),
        }
    )


def randn(*shape):
    return RNG.standard_normal(shape)


NAN, INF = float("nan"), float("inf")
for i, (data, shape) in enumerate([
    ([1 / 3, 0.0], [1, 2]),
    ([1.0, 2.0], [2]),
    ([1.5, -2.0, 3.0, 4.0], [2, 2]),
    ([1e-5, 1.0], [2]),
    ([1e9, 1.0], [2]),
    ([0.001, 10.0], [2]),
    ([1.5, 2.0, 3.0, 4.0], [2, 1, 2]),
    ([0.5], []),
    ([NAN, INF, 1.5], [3]),
    ([NAN, -INF, 2.0], [3]),
    ([0.0, 0.0, 0.0], [3]),
    ([-0.25, 100.125, 7.0, -3.5, 0.0, 12.0], [2, 3]),
    ([1234.5, 0.5], [2]),
    ([3.0, -100.0], [2]),
]):
    case(f"small_{i}", np.asarray(data, dtype=np.float64).reshape(shape))
case("scalar", np.float64(2.5))
case("scalar_int", np.float64(-3.0))
case("vector_fixed", [1.0 / 3.0, 0.0, -2.25])
case("vector_int", [1.0, -20.0, 300.0])
case("vector_sci_wide", [1e-5, 1e5, 3.0])
case("vector_sci_big_int", [2e9, 1.0, 0.0])
case("vector_tiny", [1e-6, -2e-5])
case("rounding_ties_to_even", [0.03125, 0.09375, 1.03125, 0.15625, -0.03125])
case("sci_rounding_ties", [0.03125, 1e5, -2.5e-7])
case("nonfinite", [[1.5, float("nan")], [float("-inf"), float("inf")]])
case("nonfinite_int", [1.0, float("-inf"), 2.0])
case("all_zero", np.zeros((2, 3)))
case("only_nonfinite", [float("nan"), float("inf")])
case("matrix", randn(3, 4))
case("tensor3", randn(2, 3, 2))
case("tensor4", randn(2, 1, 2, 2))
case("wrap_row_20", randn(20))
case("wrap_rows_4x30", randn(4, 30))
case("wrap_int_row", np.arange(40.0))
case("summarize_1001", np.arange(1001.0) / 7.0)
case("summarize_2000_sci", np.arange(2000.0))
case("summarize_matrix", randn(50, 30))
case("summarize_matrix_narrow", randn(400, 5))
case("summarize_matrix_wide", randn(5, 400))
case("summarize_3d", randn(12, 12, 12))
case("summarize_edge_exact", randn(1001))
case("summarize_formatter_edges_only", np.concatenate([np.ones(3), np.full(995, 1e-9), np.ones(3) * 2]))
case("no_summarize_1000", np.arange(1000.0) * 0.5)
case("empty_vector", np.zeros((0,)))
case("empty_matrix", np.zeros((2, 0)))
case("empty_3d", np.zeros((0, 3, 4)))
case("f64_fixed", [1.0 / 3.0, 2.0 / 3.0], dtype="f64")
case("f64_wrap", randn(25), dtype="f64")
case("requires_grad_leaf", [1.0, 2.0], requires_grad=True)
case("requires_grad_long", randn(14), requires_grad=True)
case("requires_grad_scalar", np.float64(0.5), requires_grad=True)

out = os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "display.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": CASES}, f)
print(f"wrote {len(CASES)} cases to {out}")
