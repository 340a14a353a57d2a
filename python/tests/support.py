"""Helpers the Python tests share: float64 tensors, a sum written with the operators only,
and central-difference derivatives of NumPy functions."""
import numpy as np

import eingrad

F64 = eingrad.float64


def t64(data, requires_grad=False):
    """A float64 tensor of `data`."""
    return eingrad.tensor(data, dtype=F64, requires_grad=requires_grad)


def total(t):
    """Sum of a 1-d or 2-d tensor through matmuls with ones (so that the autograd tests do
    not depend on the reduction ops)."""
    if t.ndim == 1:
        return t @ eingrad.ones(t.shape[0], dtype=t.dtype)
    return eingrad.ones(t.shape[0], dtype=t.dtype) @ t @ eingrad.ones(t.shape[1], dtype=t.dtype)


def numeric_grad(f, x, eps=1e-6):
    """Central differences of the scalar f (NumPy array in, float out)."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


def numeric_jacobian(f, x, eps=1e-6):
    """d f(x) / d x by central differences; f maps a NumPy array to a NumPy array."""
    x = np.array(x, dtype=np.float64)
    y0 = np.asarray(f(x))
    J = np.zeros(y0.shape + x.shape)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        J[(...,) + i] = (np.asarray(f(x + d)) - np.asarray(f(x - d))) / (2 * eps)
    return J
