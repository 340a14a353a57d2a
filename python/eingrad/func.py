"""eingrad.func (being written)."""
