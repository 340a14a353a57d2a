#!/usr/bin/env python3
"""Writes the goldens of tests/io_formats.rs into this directory (tests/golden/io/).

1. Files NumPy and PyTorch write, with arange-based values: npy (f32, f64, 0-d, empty,
   Fortran order, big-endian, and int/bool/complex/object/f16/structured ones for the errors),
   npz (np.savez, np.savez_compressed, one with an int array), safetensors from
   safetensors.torch.save_file (f32, f64, bf16, f16 with specials and subnormals, 0-d, empty,
   metadata; one with an int64 and one with a float8 tensor for the errors). expected.json
   lists, for every readable array, its file, name, dtype, shape and the bits of its values
   as eingrad must read them (bf16/f16 as their exact float32 conversion by torch).
2. The round trip: loads the eingrad_* files that the Rust test writes (run it first:
   EINGRAD_WRITE_IO_GOLDENS=1 cargo test --release -p eingrad --test io_formats), checks that
   NumPy and PyTorch read them bit-exactly, and saves them again: torch_resaved_awkward.*,
   numpy_resaved_awkward*, numpy_fortran_awkward*, numpy_bigendian_awkward*.

Run from the crate root:  /work/ref-venv/bin/python tests/golden/io/make_io_goldens.py
(torch 2.15, numpy 2.4, safetensors 0.8). The tests never run Python.
"""
import json
import os

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
EXPECTED = []


def path(name):
    return os.path.join(HERE, name)


def bits_of(a):
    """The bits of a float32/float64 array's elements in C order, as Python ints."""
    a = np.ascontiguousarray(a)
    if a.dtype.itemsize == 4:
        return [int(x) for x in a.astype(a.dtype.newbyteorder("=")).view(np.uint32).ravel()]
    return [int(x) for x in a.astype(a.dtype.newbyteorder("=")).view(np.uint64).ravel()]


def expect(file, key, a):
    """Records what eingrad must read for array `a` (numpy, f4 or f8, any order/endianness)."""
    EXPECTED.append({
        "file": file,
        "key": key,
        "dtype": "F32" if a.dtype.itemsize == 4 else "F64",
        "shape": list(a.shape),
        "bits": bits_of(a),
    })


def ar(n, dtype, scale=1.0, shift=0.0):
    return (np.arange(n, dtype=np.float64) * scale + shift).astype(dtype)


def npy_goldens():
    arrays = {
        "np_f32_2x3.npy": ar(6, "<f4", 1.0, -2.5).reshape(2, 3),
        "np_f64_5.npy": ar(5, "<f8") / 3.0,
        "np_scalar_f64.npy": np.array(-7.25, dtype="<f8"),
        "np_empty_0x3_f32.npy": np.zeros((0, 3), dtype="<f4"),
        "np_fortran_f32_3x4.npy": np.asfortranarray(ar(12, "<f4", 0.5).reshape(3, 4)),
        "np_fortran_f64_2x3x4.npy": np.asfortranarray(ar(24, "<f8", 0.1, -1.0).reshape(2, 3, 4)),
        "np_be_f8_2x3.npy": (ar(6, "<f8") / 7.0).reshape(2, 3).astype(">f8"),
        "np_be_f4_4.npy": ar(4, ">f4", -1.5, 1e-3),
        "np_fortran_be_f8_3x2.npy": np.asfortranarray((ar(6, "<f8") / 9.0).reshape(3, 2)).astype(">f8", order="F"),
    }
    for name, a in arrays.items():
        np.save(path(name), a)
        back = np.load(path(name))
        assert back.dtype == a.dtype and np.array_equal(back, a)
        assert back.flags.f_contiguous == a.flags.f_contiguous
        expect(name, None, a)
    assert np.isfortran(np.load(path("np_fortran_be_f8_3x2.npy")))
    # Arrays eingrad must refuse, naming the dtype.
    np.save(path("np_i64_3.npy"), np.arange(3, dtype="<i8"))
    np.save(path("np_bool_2.npy"), np.array([True, False]))
    np.save(path("np_c16_2.npy"), np.array([1 + 2j, 3 - 4j], dtype="<c16"))
    np.save(path("np_object_2.npy"), np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(path("np_f2_3.npy"), np.arange(3, dtype="<f2"))
    np.save(path("np_structured_2.npy"), np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))


def npz_goldens():
    arrays = {
        "weight": ar(6, "<f4", 0.25, -0.5).reshape(2, 3),
        "scalar": np.array(2.0 ** -1074, dtype="<f8"),  # the smallest subnormal
        "fortran": np.asfortranarray((ar(6, "<f8") - 2.0).reshape(3, 2)),
        "empty": np.zeros((2, 0), dtype="<f8"),
        "big_endian": ar(3, ">f4", 3.0),
    }
    for name, save in [("np_savez.npz", np.savez), ("np_savez_compressed.npz", np.savez_compressed)]:
        save(path(name), **arrays)
        with np.load(path(name)) as z:
            assert list(z.keys()) == list(arrays)
        for key, a in arrays.items():
            expect(name, key, a)
    np.savez(path("np_savez_with_int.npz"), x=ar(2, "<f4"), n=np.arange(2, dtype="<i8"))


def safetensors_goldens():
    inf, nan = float("inf"), float("nan")
    specials = [0.0, -0.0, 1.0, -2.5, inf, -inf, nan, 1e-3, 65504.0, 3.0e38]
    tensors = {
        "f32": torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5 - 1.0,
        "f64": torch.arange(4, dtype=torch.float64) / 3.0,
        "bf16": torch.tensor(specials[:8] + [2.0 ** -133, -(2.0 ** -126)], dtype=torch.float32)
        .to(torch.bfloat16)
        .reshape(2, 5),
        "f16": torch.tensor(specials[:9] + [2.0 ** -24, 2.0 ** -14, 0.1], dtype=torch.float32).to(torch.float16),
        "scalar": torch.tensor(1.5, dtype=torch.float32),
        "empty": torch.zeros(0, 2, dtype=torch.float64),
    }
    meta = {"format": "pt", "origin": "make_io_goldens.py"}
    name = "torch_mixed.safetensors"
    save_file(tensors, path(name), metadata=meta)
    # File order: by data offset (the writer sorts by dtype alignment, then name).
    with safe_open(path(name), "pt") as f:
        header_len = int.from_bytes(open(path(name), "rb").read(8), "little")
        header = json.loads(open(path(name), "rb").read(8 + header_len)[8:])
        assert f.metadata() == meta
    order = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"])
    for key in order:
        t = tensors[key]
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.to(torch.float32)  # exact
        expect(name, key, t.numpy())
    save_file({"w": torch.ones(2), "idx": torch.arange(3)}, path("torch_i64.safetensors"), metadata={"origin": "make_io_goldens.py"})
    save_file({"w": torch.ones(2), "f8": torch.ones(2).to(torch.float8_e4m3fn)}, path("torch_f8.safetensors"))


def round_trip():
    """Loads eingrad's files, checks them against NumPy/PyTorch, and saves them again."""
    st = path("eingrad_awkward.safetensors")
    tensors = load_file(st)
    with safe_open(st, "pt") as f:
        meta = f.metadata()
        names = list(f.keys())
    npz = np.load(path("eingrad_awkward.npz"))
    for k, t in tensors.items():
        a = npz[k]
        assert a.dtype == t.numpy().dtype and a.shape == tuple(t.shape), k
        assert bits_of(a) == bits_of(t.numpy()), k  # same bits through numpy and torch
    save_file(tensors, path("torch_resaved_awkward.safetensors"), metadata=meta)
    same = open(st, "rb").read() == open(path("torch_resaved_awkward.safetensors"), "rb").read()
    print("torch re-save byte-identical to eingrad's:", same, "(metadata order is a HashMap's)")
    with safe_open(path("torch_resaved_awkward.safetensors"), "pt") as f:
        assert list(f.keys()) == names and f.metadata() == meta
    np.savez(path("numpy_resaved_awkward.npz"), **{k: npz[k] for k in npz.keys()})
    for stem in ["awkward_f64", "awkward_f32_t"]:
        a = np.load(path(f"eingrad_{stem}.npy"))
        assert not np.isfortran(a) or a.ndim < 2
        np.save(path(f"numpy_resaved_{stem}.npy"), a)
        np.save(path(f"numpy_fortran_{stem}.npy"), np.asfortranarray(a))
    a = np.load(path("eingrad_awkward_f64.npy"))
    np.save(path("numpy_bigendian_awkward_f64.npy"), a.astype(">f8"))
    a = np.load(path("eingrad_awkward_f32_t.npy"))
    np.save(path("numpy_bigendian_fortran_awkward_f32_t.npy"), np.asfortranarray(a.astype(">f4")))


def main():
    npy_goldens()
    npz_goldens()
    safetensors_goldens()
    with open(path("expected.json"), "w") as f:
        json.dump(EXPECTED, f, separators=(",", ":"))
        f.write("\n")
    round_trip()
    total = sum(os.path.getsize(path(n)) for n in os.listdir(HERE))
    print(f"wrote {len(os.listdir(HERE))} files, {total} bytes")


if __name__ == "__main__":
    main()
