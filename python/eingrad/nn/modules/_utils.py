"""Helpers the layers share for their ``dtype=`` and ``device=`` arguments."""

from ... import _eingrad


def _dtype(dtype):
    return _eingrad.float32 if dtype is None else _eingrad.zeros(0, dtype=dtype).dtype


def _check_device(device):
    if device is not None and str(device) != "cpu":
        raise ValueError(f"eingrad runs on the CPU only, got device {device!r}")
