"""Seed 003 in eingrad: the Jacobian of an einsum in closed form, checked against autograd.

The seed's own code (../../../shared/SEEDS.md, section 4 "Einsum Jacobian") with these lines changed:
  * `import torch` / `from torch import einsum` / `from torch.autograd.functional import
    jacobian` -> the same names from eingrad.
  * `j = torch.zeros(...); einsum(diag_ptrn, j)[:] = w` -> `j = einsum(embed_ptrn, w,
    sizes=...)`: PyTorch's einsum returns a writable diagonal *view* that the seed assigns
    into; eingrad's einsum is a function (no aliasing), but its generalised notation runs the
    same pattern backwards: repeated output labels put `w` on the diagonal and a label absent
    from the input broadcasts over a new axis (its size from `sizes=`). One pattern, no
    zeros-then-write, and the result is differentiable.
  * `results` is printed with the shapes, and also checked against eingrad's own closed-form
    `eingrad.func.einsum_jacobian`.
Run: python examples/python/seed_003.py
"""
import eingrad as torch
from eingrad import einsum
from eingrad.autograd.functional import jacobian


def jacobian_diag_ptrn(ptrn):
    op1, op2 = ptrn.split('->')[0].split(',')
    start = (op1 + op2) + op1
    end = "".join([c for c in op1 if c not in op2]) + op2
    return f"{start}->{end}"


def organize_jacobian_ptrn(ptrn):
    start, end = ptrn.replace(',', '').split('->')
    return f"{start}...->{end}..."


def get_ptrns(ptrn):
    return jacobian_diag_ptrn(ptrn), organize_jacobian_ptrn(ptrn)


def einsum_jacobian(ptrn, x, w):
    diag_ptrn, org_ptrn = get_ptrns(ptrn)
    # the seed: j = zeros(*x.shape, *w.shape, *x.shape); einsum(diag_ptrn, j)[:] = w
    op1, op2 = ptrn.split('->')[0].split(',')
    start = diag_ptrn.split('->')[0]
    sizes = {c: x.shape[op1.index(c)] for c in op1}
    j = einsum(f"{op2}->{start}", w, sizes=sizes)
    return einsum(org_ptrn, j)


def sanity(ptrn, x, w):
    f = lambda x: einsum(ptrn, x, w)
    j = jacobian(f, x)
    manual_j = einsum_jacobian(ptrn, x, w)
    closed_form, _ = torch.func.einsum_jacobian(ptrn, [x, w], 0)
    return torch.allclose(j, manual_j) and torch.allclose(j, closed_form), tuple(j.shape)


ptrn1 = 'ij,jk->ik'  # mm
x1, w1 = torch.randn(2, 3), torch.randn(3, 4)
ptrn2 = 'bij,bjk->bik'  # bmm
x2, w2 = torch.randn(5, 3, 8), torch.randn(5, 8, 9)
ptrn3 = 'bchwkt,fckt->bfhw'  # convolution
x3, w3 = torch.randn(1, 3, 16, 16, 2, 2), torch.randn(2, 3, 2, 2)
ptrn4 = 'abcd,efd->'  # ???
x4, w4 = torch.randn(1, 2, 3, 4), torch.randn(9, 10, 4)
stuff = [(ptrn1, x1, w1), (ptrn2, x2, w2), (ptrn3, x3, w3), (ptrn4, x4, w4)]
results = [sanity(*thing) for thing in stuff]
for (ptrn, _, _), (ok, shape) in zip(stuff, results):
    print(f"{ptrn:>20}  jacobian {shape}  closed form == autograd: {ok}")
results = [ok for ok, _ in results]
print(results)
# [True, True, True, True]
assert results == [True, True, True, True]
print("seed 003: PASS")
