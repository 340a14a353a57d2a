"""eingrad.autograd (being written)."""
