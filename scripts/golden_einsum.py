#!/usr/bin/env python3
"""Golden einsum values and derivatives from PyTorch (float64).

Writes
  tests/golden/einsum_values.json  -- per case: pattern, operand shapes and values, output
  tests/golden/einsum_grads.json   -- per case: cotangent U, first-order gradients of
                                      sum(out * U) w.r.t. every operand, directions V_k and the
                                      second-order gradients of sum_k sum(grad_k * V_k)
                                      (computed with create_graph=True), or null when that is
                                      identically zero (one operand: einsum is linear in it).

Read by tests/einsum_golden.rs; the Rust tests never need Python.

    /work/ref-venv/bin/python scripts/golden_einsum.py
"""

import json
import os

import numpy as np
import torch

torch.set_default_dtype(torch.float64)

# (pattern, operand shapes). Small shapes keep the JSON small.
CASES = [
    # matmul variants
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(3, 2), (2, 3)]),
    ("ij,jk->ki", [(2, 3), (3, 4)]),
    ("ij,kj->ik", [(2, 3), (4, 3)]),
    ("ji,jk->ik", [(3, 2), (3, 4)]),
    ("ji,kj->ki", [(3, 2), (4, 3)]),
    ("ij,j->i", [(3, 4), (4,)]),
    ("i,ij->j", [(3,), (3, 4)]),
    ("i,i->", [(5,), (5,)]),
    ("ij,jk->", [(2, 3), (3, 2)]),
    # batched
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
    ("bij,bjk->bki", [(2, 2, 3), (2, 3, 2)]),
    ("bij,jk->bik", [(2, 3, 4), (4, 2)]),
    ("bij,bkj->bik", [(2, 2, 3), (2, 4, 3)]),
    ("bhqd,bhkd->bhqk", [(1, 2, 3, 2), (1, 2, 4, 2)]),
    ("bhqk,bhkd->bhqd", [(1, 2, 3, 4), (1, 2, 4, 2)]),
    ("ibj,jbk->bik", [(2, 3, 2), (2, 3, 2)]),
    # transposes, permutations, sums
    ("ij->ji", [(2, 3)]),
    ("ijk->kij", [(2, 3, 4)]),
    ("ij->i", [(3, 4)]),
    ("ij->j", [(3, 4)]),
    ("ijk->", [(2, 3, 2)]),
    ("ijk->ki", [(2, 3, 4)]),
    ("ijk,jl->il", [(2, 3, 2), (3, 4)]),
    ("ij,kl->il", [(2, 3), (2, 4)]),
    # traces and diagonals
    ("ii->", [(4, 4)]),
    ("ii", [(3, 3)]),
    ("ii->i", [(4, 4)]),
    ("iij->ij", [(3, 3, 2)]),
    ("iji->j", [(3, 2, 3)]),
    ("ijji->", [(2, 3, 3, 2)]),
    ("iii->i", [(3, 3, 3)]),
    ("ii,ij->j", [(3, 3), (3, 2)]),
    ("iij,jk->ik", [(2, 2, 3), (3, 2)]),
    ("ii,i->i", [(3, 3), (3,)]),
    ("ijj,jk->ik", [(2, 3, 3), (3, 2)]),
    # outer and Hadamard products
    ("i,j->ij", [(3,), (4,)]),
    ("i,j", [(2,), (3,)]),
    ("i,j,k->ijk", [(2,), (3,), (2,)]),
    ("ij,kl->ijkl", [(2, 2), (3, 2)]),
    ("ij,kl->kilj", [(2, 2), (2, 3)]),
    ("i,i->i", [(5,), (5,)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("ij,ij->", [(3, 4), (3, 4)]),
    ("ij,ji->ij", [(2, 3), (3, 2)]),
    ("ij,ij,ij->ij", [(2, 3), (2, 3), (2, 3)]),
    # ellipsis
    ("...ij,...jk->...ik", [(2, 2, 3), (2, 3, 2)]),
    ("...ij,...jk", [(2, 2, 3), (2, 3, 2)]),
    ("...ij,jk->...ik", [(2, 3, 2, 3), (3, 2)]),
    ("...ij,...jk->...ik", [(2, 3, 2, 3), (3, 2)]),
    ("...ij,...jk->...ik", [(3, 1, 2, 3), (4, 3, 2)]),
    ("i...->...i", [(2, 3, 4)]),
    ("...->...", [(2, 3)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("i...j,j...->i...", [(2, 3, 4), (4, 3)]),
    ("i...j,j->...i", [(2, 3, 2, 4), (4,)]),
    ("...,...->...", [(2, 1, 3), (4, 3)]),
    ("...i,...i->...", [(3, 4), (2, 1, 4)]),
    ("ab...,b...->a...", [(2, 3, 2), (3, 2)]),
    ("...i->", [(2, 3, 2)]),
    ("i...,i...->...", [(3, 2), (3, 4, 2)]),
    ("...i,i->i", [(2, 3, 3), (3,)]),
    # size-1 label broadcasting
    ("ij,ij->ij", [(1, 3), (2, 3)]),
    ("ij,ij->ij", [(2, 1), (2, 3)]),
    ("bij,bjk->bik", [(1, 2, 3), (3, 3, 2)]),
    ("ij,jk->ik", [(2, 1), (3, 4)]),
    ("i,i->i", [(1,), (4,)]),
    ("ij,j->ij", [(3, 1), (4,)]),
    # implicit outputs
    ("ba", [(2, 3)]),
    ("ij,jk,kl", [(2, 3), (3, 2), (2, 2)]),
    ("bA,Ac", [(2, 3), (3, 4)]),
    ("ijk,kji", [(2, 3, 2), (2, 3, 2)]),
    ("kj,ji", [(2, 3), (3, 2)]),
    # three and four operands
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("i,ij,j->", [(3,), (3, 4), (4,)]),
    ("ab,bc,ca->", [(2, 3), (3, 4), (4, 2)]),
    ("bi,bj,bk->ijk", [(3, 2), (3, 2), (3, 2)]),
    ("ijk,jl,km->ilm", [(2, 3, 2), (3, 2), (2, 3)]),
    ("ab,bc,cd,de->ae", [(2, 3), (3, 2), (2, 4), (4, 2)]),
    ("ij,jk,kl,li->", [(2, 3), (3, 2), (2, 3), (3, 2)]),
    ("ea,eb,ec,abc->e", [(3, 2), (3, 2), (3, 3), (2, 2, 3)]),
    ("ai,bi,ci,di->abcd", [(2, 3), (2, 3), (1, 3), (2, 3)]),
    ("ij,jk,k->i", [(2, 3), (3, 4), (4,)]),
    # scalar operands
    ("", [()]),
    ("->", [()]),
    ("i,->i", [(3,), ()]),
    (",i->i", [(), (3,)]),
    (",->", [(), ()]),
    ("ij,->ji", [(2, 3), ()]),
    (",ij,->", [(), (2, 2), ()]),
    # uppercase labels
    ("Ab,bC->AC", [(2, 3), (3, 2)]),
    ("aA,Ab->ab", [(2, 3), (3, 4)]),
    ("IJ->JI", [(2, 3)]),
    ("Ii,iI->", [(2, 3), (3, 2)]),
    ("ZzY,zY->Z", [(2, 3, 2), (3, 2)]),
]


def parse_terms(pattern):
    """Input terms (with '.' standing for the ellipsis) and whether the output is explicit."""
    lhs = pattern.split("->")[0]
    terms = [t.replace(" ", "").replace("...", ".") for t in lhs.split(",")]
    return terms, "->" in pattern


def broadcast_operands(pattern, shapes):
    """Per operand: whether it has dims that broadcast (size-1 labelled dims whose label is
    larger elsewhere, or an ellipsis shorter or with size-1 dims against the broadcast
    ellipsis)."""
    terms, _ = parse_terms(pattern)
    sizes = {}
    ell = []
    for term, shape in zip(terms, shapes):
        n_letters = len(term.replace(".", ""))
        e = len(shape) - n_letters if "." in term else 0
        ell.append(e)
        d = 0
        for c in term:
            if c == ".":
                d += e
                continue
            sizes[c] = max(sizes.get(c, 1), shape[d])
            d += 1
    max_e = max(ell) if ell else 0
    ell_sizes = [1] * max_e
    for term, shape, e in zip(terms, shapes, ell):
        if "." not in term:
            continue
        p = term.index(".")
        for j in range(e):
            ell_sizes[max_e - e + j] = max(ell_sizes[max_e - e + j], shape[p + j])
    out = []
    for term, shape, e in zip(terms, shapes, ell):
        b = False
        d = 0
        for c in term:
            if c == ".":
                if e < max_e:
                    b = True
                for j in range(e):
                    if shape[d + j] == 1 and ell_sizes[max_e - e + j] > 1:
                        b = True
                d += e
                continue
            if shape[d] == 1 and sizes[c] > 1:
                b = True
            d += 1
        out.append(b)
    return out


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def rnd(rng, shape):
    # Three decimals: exact enough, and short in JSON.
    return np.round(rng.standard_normal(shape), 3)


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden")
    values, grads = [], []
    for idx, (pattern, shapes) in enumerate(CASES):
        rng = np.random.default_rng(1000 + idx)
        xs = [torch.tensor(rnd(rng, s), requires_grad=True) for s in shapes]
        out = torch.einsum(pattern, *xs)
        u = torch.tensor(rnd(rng, tuple(out.shape)))
        loss = (out * u).sum()
        gs = torch.autograd.grad(loss, xs, create_graph=True, allow_unused=True)
        gs = [g if g is not None else torch.zeros_like(x) for g, x in zip(gs, xs)]
        vs = [torch.tensor(rnd(rng, s)) for s in shapes]
        second = None
        if len(xs) > 1:
            s = sum((g * v).sum() for g, v in zip(gs, vs))
            hs = torch.autograd.grad(s, xs, allow_unused=True)
            second = [flat(h) if h is not None else [0.0] * x.numel() for h, x in zip(hs, xs)]
        name = f"{idx:03}:{pattern}:{'|'.join('x'.join(map(str, s)) for s in shapes)}"
        values.append(
            {
                "name": name,
                "pattern": pattern,
                "shapes": [list(s) for s in shapes],
                "inputs": [flat(x) for x in xs],
                "out_shape": list(out.shape),
                "output": flat(out),
            }
        )
        grads.append(
            {
                "name": name,
                "pattern": pattern,
                "u": flat(u),
                "grads": [flat(g) for g in gs],
                "v": [flat(v) for v in vs],
                "second_order": second,
                "second_order_zero_reason": None
                if second is not None
                else "one operand: einsum is linear in it, so the second derivative is 0",
                "broadcast_operands": broadcast_operands(pattern, shapes),
            }
        )
    meta = {
        "generator": "scripts/golden_einsum.py",
        "torch": torch.__version__,
        "dtype": "float64",
    }
    for fname, cases in (("einsum_values.json", values), ("einsum_grads.json", grads)):
        path = os.path.join(root, fname)
        with open(path, "w") as f:
            json.dump({"meta": meta, "cases": cases}, f, separators=(",", ":"))
            f.write("\n")
        print(f"{path}: {len(cases)} cases, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
