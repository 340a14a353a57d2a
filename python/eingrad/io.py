"""eingrad.io (being written)."""
