"""eingrad.nn (being written)."""
