//! conv1d as unfold + einsum.
