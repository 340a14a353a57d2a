"""``eingrad.io``: tensors to and from files other libraries read: safetensors (PyTorch,
Hugging Face), NumPy's ``.npy`` and ``.npz``; and ``eingrad.save`` / ``eingrad.load`` for
state dicts (as safetensors).

Writes are atomic (a temporary file renamed over the target). A file that cannot be read
raises ``OSError``; a malformed one ``ValueError`` naming the file and what is wrong. Only
float32 and float64 tensors are stored (what is loaded never requires grad).

>>> import eingrad, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
>>> eingrad.io.save_safetensors({"w": eingrad.ones(2)}, path)
>>> eingrad.io.load_safetensors(path)["w"].tolist()
[1.0, 1.0]
"""

import os
from collections import OrderedDict

from . import _eingrad
from ._eingrad import Tensor

__all__ = ["save_safetensors", "load_safetensors", "save_npy", "load_npy", "savez",
           "load_npz", "save", "load"]


def _named_tensors(tensors, what):
    if not hasattr(tensors, "items"):
        raise TypeError(f"{what}: expected a dict of name -> tensor, got {type(tensors).__name__}")
    out = []
    for name, t in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"{what}: tensor names must be strings, got {name!r}")
        if not isinstance(t, Tensor):
            raise TypeError(f"{what}: the value under {name!r} is a {type(t).__name__}, not a "
                            "tensor")
        out.append((name, t))
    return out


def _path(path, what):
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{what}: path must be a str or os.PathLike, got {type(path).__name__}")
    return os.fspath(path)


def save_safetensors(tensors, path, metadata=None):
    """Writes a dict of name -> tensor (and optional string metadata) as a safetensors file
    that ``safetensors.torch.load_file`` reads.

    >>> import eingrad, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
    >>> eingrad.io.save_safetensors({"b": eingrad.zeros(3)}, path, metadata={"step": "1"})
    """
    items = _named_tensors(tensors, "save_safetensors")
    meta = {}
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"save_safetensors: metadata must map str to str, got {k!r}: {v!r}")
        meta[k] = v
    _eingrad._io_save_safetensors(items, _path(path, "save_safetensors"), meta)


def load_safetensors(path, with_metadata=False):
    """Reads a safetensors file into an ordered dict of name -> tensor (float16 and bfloat16
    become float32); with ``with_metadata=True`` returns ``(tensors, metadata)``.

    >>> import eingrad, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
    >>> eingrad.io.save_safetensors({"b": eingrad.zeros(3)}, path, {"k": "v"})
    >>> eingrad.io.load_safetensors(path, with_metadata=True)[1]
    {'k': 'v'}
    """
    tensors, metadata = _eingrad._io_load_safetensors(_path(path, "load_safetensors"))
    out = OrderedDict(tensors)
    return (out, dict(metadata)) if with_metadata else out


def save_npy(path, tensor):
    """Writes one tensor as a ``.npy`` file (``numpy.load`` reads it).

    >>> import eingrad, tempfile, os
    >>> eingrad.io.save_npy(os.path.join(tempfile.mkdtemp(), "x.npy"), eingrad.ones(2))
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"save_npy: expected a tensor, got {type(tensor).__name__}")
    _eingrad._io_save_npy(_path(path, "save_npy"), tensor)


def load_npy(path):
    """Reads a ``.npy`` file of float32 or float64 (C or Fortran order).

    >>> import eingrad, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.npy"); eingrad.io.save_npy(p, eingrad.ones(2))
    >>> eingrad.io.load_npy(p).tolist()
    [1.0, 1.0]
    """
    return _eingrad._io_load_npy(_path(path, "load_npy"))


def savez(path, *args, **tensors):
    """Writes tensors to an uncompressed ``.npz`` archive, as ``numpy.savez``: positional
    tensors are named ``arr_0``, ``arr_1``, ...; keyword ones by their keyword.

    >>> import eingrad, tempfile, os
    >>> eingrad.io.savez(os.path.join(tempfile.mkdtemp(), "a.npz"), w=eingrad.ones(2))
    """
    named = {f"arr_{i}": t for i, t in enumerate(args)}
    for k, t in tensors.items():
        if k in named:
            raise ValueError(f"savez: cannot use un-named variables and keyword {k}")
        named[k] = t
    _eingrad._io_save_npz(_path(path, "savez"), _named_tensors(named, "savez"))


def load_npz(path):
    """Reads an ``.npz`` archive into an ordered dict of name -> tensor.

    >>> import eingrad, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a.npz"); eingrad.io.savez(p, w=eingrad.ones(2))
    >>> list(eingrad.io.load_npz(p))
    ['w']
    """
    return OrderedDict(_eingrad._io_load_npz(_path(path, "load_npz")))


def save(obj, f):
    """Saves a tensor or a dict of name -> tensor (a ``state_dict()``) to ``f`` as
    safetensors. (Unlike ``torch.save``, arbitrary Python objects are not pickled.)

    >>> import eingrad, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "m.pt")
    >>> eingrad.io.save(eingrad.nn.Linear(2, 2).state_dict(), p)
    """
    if isinstance(obj, Tensor):
        save_safetensors({"": obj}, f, {"eingrad.save": "tensor"})
        return
    if not hasattr(obj, "items"):
        raise TypeError("eingrad.save: saves a tensor or a dict of name -> tensor (a "
                        f"state_dict), got {type(obj).__name__}")
    save_safetensors(obj, f, {"eingrad.save": "dict"})


def load(f, map_location=None, weights_only=True):
    """Loads what ``eingrad.save`` wrote (or any safetensors file): a tensor or an ordered
    dict of name -> tensor.

    >>> import eingrad, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.pt"); eingrad.io.save(eingrad.ones(2), p)
    >>> eingrad.io.load(p).tolist()
    [1.0, 1.0]
    """
    if map_location is not None and str(map_location) != "cpu":
        raise ValueError(f"eingrad.load: eingrad runs on the CPU only, got map_location="
                         f"{map_location!r}")
    tensors, meta = load_safetensors(f, with_metadata=True)
    if meta.get("eingrad.save") == "tensor" and list(tensors) == [""]:
        return tensors[""]
    return tensors
