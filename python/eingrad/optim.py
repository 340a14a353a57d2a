"""eingrad.optim (being written)."""
