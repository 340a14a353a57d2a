"""Seed 000 in eingrad: dynamic token pooling (hourglass transformers): the pooling matrix
built from boundaries, and its Jacobian with respect to the boundaries.

The seed's own code (`shortening.py` from PiotrNawrot/dynamic-pooling as quoted by the seed,
see ../../../shared/SEEDS.md, section 2), with these lines changed:
  * `import torch` -> `import eingrad as torch`; nothing else in `final`, `common`,
    `downsample` and `upsample` changes (`lel[autoregressive] = 0` on a tensor with history,
    `hh1 -= boundaries`, `device=boundaries.device` all work as in PyTorch).
  * The notebook's cells run in order as a script; each displayed value is printed and the
    seed's numbers are asserted (the Jacobian blocks, and J scaled by -2 when foo is).
  * Added at the end: the same Jacobian in one call, `eingrad.autograd.functional.jacobian`,
    and downsample/upsample of hidden states (shapes, and the null group in front).
Run: python examples/python/seed_000.py
"""
import eingrad as torch


def final(foo,
          upsample):
    """
        Input:
            B x L x S
    """
    autoregressive = foo != 0
    lel = 1 - foo

    lel[autoregressive] = 0

    dim = 2 if upsample else 1

    lel = lel / (lel.sum(dim=dim, keepdim=True) + 1e-9)

    return lel


def common(boundaries, upsample=False):
    """

    """
    boundaries = boundaries.clone()

    n_segments = boundaries.sum(dim=-1).max().item()

    if upsample:
        n_segments += 1

    if n_segments == 0:
        return None

    tmp = torch.zeros_like(
        boundaries
    ).unsqueeze(2) + torch.arange(
        start=0,
        end=n_segments,
        device=boundaries.device
    )

    hh1 = boundaries.cumsum(1)

    if not upsample:
        hh1 -= boundaries

    foo = tmp - hh1.unsqueeze(-1)

    return foo


def downsample(boundaries, hidden, null_group):
    """
        Downsampling

        - The first element of boundaries tensor is always 0 and doesn't matter
        - 1 starts a new group
        - We append an extra "null" group at the beginning
        - We discard last group because it won't be used (in terms of upsampling)

        Input:
            boundaries: B x L
            hidden: L x B x D
        Output:
            shortened_hidden: S x B x D
    """

    foo = common(boundaries, upsample=False)  # B x L x S

    if foo is None:
        return null_group.repeat(1, hidden.size(1), 1)
    else:
        bar = final(foo=foo, upsample=False)  # B x L x S

        shortened_hidden = torch.einsum('lbd,bls->sbd', hidden, bar)
        shortened_hidden = torch.cat(
            [null_group.repeat(1, hidden.size(1), 1), shortened_hidden], dim=0
        )

        return shortened_hidden


def upsample(boundaries, shortened_hidden):
    """
        Upsampling

        - The first element of boundaries tensor is always 0 and doesn't matter
        - 1 starts a new group
        - i-th group can be upsampled only to the tokens from (i+1)-th group, otherwise there's a leak

        Input:
            boundaries: B x L
            shortened_hidden: S x B x D
        Output:
            upsampled_hidden: L x B x D
    """

    foo = common(boundaries, upsample=True)  # B x L x S
    bar = final(foo, upsample=True)  # B x L x S

    return torch.einsum('sbd,bls->lbd', shortened_hidden, bar)


# In [2]
my_hard_boundaries = torch.tensor([[0, 0, 1, 1, 0, 1, 0, 0, 0, 1]], dtype=torch.float32, requires_grad=True)
my_hard_boundaries.retain_grad()
print(my_hard_boundaries)

# In [3]
foo = common(my_hard_boundaries, upsample=False)
bar = final(foo, upsample=False)
print(bar.shape, bar)
assert bar.shape == (1, 10, 4)

# In [4], [5]
l = bar[0, 6, 3]
print(l)
l.backward()
print(my_hard_boundaries, my_hard_boundaries.grad)

# In [6], [7]
grad_values = []

for i in range(10):
    my_hard_boundaries = torch.tensor([[0, 0, 1, 1, 0, 1, 0, 0, 0, 1]], dtype=torch.float32, requires_grad=True)
    my_hard_boundaries.retain_grad()
    foo = common(my_hard_boundaries, upsample=False)
    bar = final(foo, upsample=False)
    l = bar[0, i, :].sum()  # We can safely sum as the 0. values in bar are disconnected from the computation graph.
    l.backward()
    grad_values.append(my_hard_boundaries.grad)
    my_hard_boundaries.grad = None

jacobian = torch.cat(grad_values, dim=0)
print(jacobian)

# In [8]: the blocks, against the closed form of SEEDS.md
print(jacobian[:3, :3], jacobian[3:4, 3:4], jacobian[4:6, 4:6], jacobian[6:10, 6:10])
BLOCKS = {
    (0, 3): [[-2 / 9, -1 / 9, 0], [1 / 9, -1 / 9, 0], [1 / 9, 2 / 9, 0]],
    (3, 4): [[0]],
    (4, 6): [[-1 / 4, 0], [1 / 4, 0]],
    (6, 10): [[-3 / 16, -2 / 16, -1 / 16, 0], [1 / 16, -2 / 16, -1 / 16, 0],
              [1 / 16, 2 / 16, -1 / 16, 0], [1 / 16, 2 / 16, 3 / 16, 0]],
}
expected = torch.zeros(10, 10)
for (a, b), block in BLOCKS.items():
    expected[a:b, a:b] = torch.tensor(block)
assert torch.allclose(jacobian, expected, atol=1e-6), "Jacobian blocks"
expected_bar = torch.zeros(10, 4)
for rows, col, v in [((0, 3), 0, 1 / 3), ((3, 4), 1, 1.0), ((4, 6), 2, 0.5), ((6, 10), 3, 0.25)]:
    expected_bar[rows[0]:rows[1], col] = v
assert torch.allclose(bar[0], expected_bar, atol=1e-6), "pooling matrix"

# In [9]-[14]: multiplying foo by -2 leaves the forward pass and scales the Jacobian by -2
my_hard_boundaries = torch.tensor([[0, 0, 1, 1, 0, 1, 0, 0, 0, 1]], dtype=torch.float32, requires_grad=True)
my_hard_boundaries.retain_grad()
foo_modified = common(my_hard_boundaries, upsample=False)
foo_modified = -2. * foo_modified
bar_modified = final(foo_modified, upsample=False)
foo_origonal = common(my_hard_boundaries, upsample=False)
bar_origonal = final(foo_origonal, upsample=False)
print(bar_modified)
print(torch.allclose(bar_modified, bar_origonal))
assert torch.allclose(bar_modified, bar_origonal)

grad_values_modified = []

for i in range(10):
    my_hard_boundaries = torch.tensor([[0, 0, 1, 1, 0, 1, 0, 0, 0, 1]], dtype=torch.float32, requires_grad=True)
    my_hard_boundaries.retain_grad()
    foo_modified = common(my_hard_boundaries, upsample=False)
    foo_modified = -2. * foo_modified
    bar_modified = final(foo_modified, upsample=False)
    l = bar_modified[0, i, :].sum()  # We can safely sum as the 0. values in bar are disconnected from the computation graph.
    l.backward()
    grad_values_modified.append(my_hard_boundaries.grad)
    my_hard_boundaries.grad = None

jacobian_modified = torch.cat(grad_values_modified, dim=0)
print(jacobian_modified)
assert torch.allclose(jacobian_modified, -2. * expected, atol=1e-6), "J scaled by -2"

# Added: the whole Jacobian of the row sums in one call
rows = lambda b: final(common(b, upsample=False), upsample=False)[0].sum(dim=-1)
b0 = torch.tensor([0, 0, 1, 1, 0, 1, 0, 0, 0, 1], dtype=torch.float32).unsqueeze(0)
j_one_call = torch.autograd.functional.jacobian(rows, b0).view(10, 10)
assert torch.allclose(j_one_call, expected, atol=1e-6), "functional.jacobian"
print("autograd.functional.jacobian gives the same matrix:", torch.allclose(j_one_call, jacobian))

# Added: pooling hidden states down and back up
L, B, D = 10, 1, 3
hidden = torch.randn(L, B, D, seed=0)
null_group = torch.zeros(1, 1, D)
short = downsample(b0, hidden, null_group)
up = upsample(b0, short)
print("downsampled", tuple(short.shape), "upsampled", tuple(up.shape))
assert short.shape == (5, 1, 3) and up.shape == (10, 1, 3)
assert torch.allclose(short[1, 0], hidden[0:3, 0].mean(dim=0), atol=1e-6)  # segment {0,1,2}
assert torch.allclose(up[0:2], torch.zeros(2, 1, 3), atol=1e-6)  # before the first boundary: the null group
assert torch.allclose(up[2], short[1], atol=1e-6)  # a segment's summary reaches only its last token on
print("seed 000: PASS")
