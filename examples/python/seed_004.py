"""Seed 004 in eingrad: output length and partial derivatives of a standard and a
left-padded 1-d convolution, read one Jacobian entry at a time through grad_outputs.

The seed's own code (redwrasse's gist, see ../../../shared/SEEDS.md) with these lines changed:
  * `import torch` / `torch.nn.functional as F` -> `import eingrad as torch` and
    `eingrad.nn.functional as F`: eingrad uses PyTorch's names, so nothing else changes.
  * `tests()` also prints a summary line (the seed only asserts).
Run: python examples/python/seed_004.py
"""
import eingrad as torch
import eingrad.nn.functional as F

# convolution definition:
# s_i = x_l w_{i-l}
# standard convolution: s_i = x_l w_{i + k - l - 1}, output length n - k + 1,
#   partial derivatives D_ij = del s_i / del x_j = w_{i + k - j - 1}
# left-padded convolution (k - 1 zeros on the left): output length n,
#   D_ij = w_{i - j}

# input length and kernel size
n, k = 10, 3


def partial_derivative(y, x, i, j):
    # computes del y_i del x_j: partial derivative of y_i wrt x_j
    #
    # autograd.grad gives z_i grad_j y_i, where z_i is a vector fed to 'grad_outputs'
    # hence feeding a one-hot as z_i gives the jacobian row grad_j y_i for i fixed
    z = torch.zeros(y.shape)
    z[:, :, i] = 1.
    dy_dx = torch.autograd.grad(outputs=y, inputs=x, grad_outputs=z, retain_graph=True)[0][:, :, j][0]
    return dy_dx[0].item()


def left_pad_k(x, m):
    # left pad a 1d tensor x with m zeroes
    # on the left
    return F.pad(x,
                 pad=(m, 0),
                 mode='constant',
                 value=0)


def test_standard_convolution():
    x = torch.randn(1, 1, n)
    x.requires_grad = True
    layer = torch.nn.Conv1d(
        in_channels=1,
        out_channels=1,
        kernel_size=k
    )
    layer.weight = torch.nn.Parameter(torch.ones_like(layer.weight))
    y = layer(x)
    assert (y.shape[2] == 8), 'standard convolution output should be of length n - k + 1'
    checked = 0
    for i in range(n - k + 1):
        for j in range(n):
            # nonzero values should be for which w_{i + k - j -1}
            # is nonzero, eg i + k - j - 1 = 0, ..., k - 1 (see notes at top)
            pd = partial_derivative(y, x, i, j)
            in_range = (i - j + k - 1 >= 0) and (i - j + k - 1 <= k - 1)
            if in_range:
                assert (pd == 1.0), 'unexpected standard convolution partial derivative'
            else:
                assert (pd == 0.0), 'unexpected standard convolution partial derivative'
            checked += 1
    return y.shape[2], checked


def test_left_padded_convolution():
    x = torch.randn(1, 1, n)
    x.requires_grad = True
    # standard left-padding is with k - 1 zeros to produce matched output length
    x2 = left_pad_k(x, k - 1)
    layer = torch.nn.Conv1d(
        in_channels=1,
        out_channels=1,
        kernel_size=k
    )
    layer.weight = torch.nn.Parameter(torch.ones_like(layer.weight))
    y = layer(x2)
    assert (y.shape[2] == n), 'left-padded convolution output should be of length n'
    checked = 0
    for i in range(n - k + 1):
        for j in range(n):
            # nonzero values should be for which w_{i -j}
            # is nonzero, eg i - j = 0, ..., k - 1 (see notes at top)
            pd = partial_derivative(y, x, i, j)
            in_range = (i - j >= 0) and (i - j <= k - 1)
            if in_range:
                assert (pd == 1.0), 'unexpected left-padded convolution partial derivative'
            else:
                assert (pd == 0.0), 'unexpected left-padded convolution partial derivative'
            checked += 1
    return y.shape[2], checked


def tests():
    length, checked = test_standard_convolution()
    print(f"standard conv1d: output length {length} (n - k + 1 = {n - k + 1}), "
          f"{checked} partial derivatives as expected")
    length, checked = test_left_padded_convolution()
    print(f"left-padded conv1d: output length {length} (n = {n}), "
          f"{checked} partial derivatives as expected")
    print("seed 004: PASS")


tests()
