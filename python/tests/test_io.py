"""eingrad.io: safetensors, .npy and .npz files, checked against NumPy (and the safetensors
package / PyTorch when installed); missing and corrupt files."""
from collections import OrderedDict

import numpy as np
import pytest

import eingrad
from eingrad import nn


def test_safetensors_round_trip_keeps_dtypes_values_and_metadata(tmp_path):
    path = tmp_path / "m.safetensors"
    a = np.random.default_rng(0).standard_normal((3, 4))
    tensors = {"w": eingrad.tensor(a, dtype=eingrad.float32),
               "b": eingrad.tensor(a[0], dtype=eingrad.float64),
               "s": eingrad.tensor(2.5)}
    eingrad.io.save_safetensors(tensors, path, metadata={"step": "7"})
    loaded, meta = eingrad.io.load_safetensors(str(path), with_metadata=True)
    assert isinstance(loaded, OrderedDict) and set(loaded) == {"w", "b", "s"}
    assert meta == {"step": "7"}
    assert loaded["w"].dtype == eingrad.float32 and loaded["b"].dtype == eingrad.float64
    np.testing.assert_array_equal(loaded["w"].numpy(), a.astype(np.float32))
    np.testing.assert_array_equal(loaded["b"].numpy(), a[0])
    assert loaded["s"].shape == () and loaded["s"].item() == 2.5
    assert not loaded["w"].requires_grad


def test_state_dict_round_trip_through_safetensors(tmp_path):
    eingrad.manual_seed(0)
    a = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    b = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    path = tmp_path / "model.safetensors"
    eingrad.io.save_safetensors(a.state_dict(), path)
    b.load_state_dict(eingrad.io.load_safetensors(path))
    x = eingrad.randn(5, 3)
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    # eingrad.io.save / load: the same through the torch-like names
    eingrad.io.save(a.state_dict(), tmp_path / "model.pt")
    sd = eingrad.io.load(tmp_path / "model.pt")
    assert list(sd) == sorted(a.state_dict()) or set(sd) == set(a.state_dict())
    eingrad.io.save(eingrad.ones(2), tmp_path / "t.pt")
    assert eingrad.io.load(tmp_path / "t.pt").tolist() == [1.0, 1.0]
    with pytest.raises(TypeError, match="dict of name -> tensor"):
        eingrad.io.save([1, 2], tmp_path / "x.pt")


def test_safetensors_bad_inputs(tmp_path):
    with pytest.raises(TypeError, match="'x' is a int, not a tensor"):
        eingrad.io.save_safetensors({"x": 1}, tmp_path / "a.safetensors")
    with pytest.raises(TypeError, match="metadata must map str to str"):
        eingrad.io.save_safetensors({"x": eingrad.ones(1)}, tmp_path / "a.safetensors", {"k": 1})
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(OSError, match="nope.safetensors"):
        eingrad.io.load_safetensors(missing)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    with pytest.raises(ValueError, match="bad.safetensors"):
        eingrad.io.load_safetensors(bad)
    truncated = tmp_path / "trunc.safetensors"
    eingrad.io.save_safetensors({"w": eingrad.ones(100)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:-8])
    with pytest.raises(ValueError, match="trunc.safetensors"):
        eingrad.io.load_safetensors(truncated)


def test_npy_both_ways_with_numpy(tmp_path):
    a = np.random.default_rng(1).standard_normal((2, 3, 4))
    p = tmp_path / "a.npy"
    eingrad.io.save_npy(p, eingrad.tensor(a, dtype=eingrad.float64))
    back = np.load(p)
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back, a)
    for arr in (a.astype(np.float32), np.asfortranarray(a), a.astype(">f8")):
        np.save(p, arr)
        t = eingrad.io.load_npy(p)
        np.testing.assert_array_equal(t.numpy(), np.asarray(arr))
    np.save(p, np.arange(3))
    with pytest.raises(ValueError, match="a.npy"):
        eingrad.io.load_npy(p)
    with pytest.raises(OSError, match="missing.npy"):
        eingrad.io.load_npy(tmp_path / "missing.npy")
    with pytest.raises(TypeError, match="expected a tensor"):
        eingrad.io.save_npy(p, a)


def test_npz_both_ways_with_numpy(tmp_path):
    r = np.random.default_rng(2)
    a, b = r.standard_normal((3, 2)), r.standard_normal(5).astype(np.float32)
    p = tmp_path / "a.npz"
    eingrad.io.savez(p, eingrad.tensor(a, dtype=eingrad.float64), b=eingrad.tensor(b))
    with np.load(p) as z:
        assert sorted(z.files) == ["arr_0", "b"]
        np.testing.assert_array_equal(z["arr_0"], a)
        np.testing.assert_array_equal(z["b"], b)
    for save in (np.savez, np.savez_compressed):
        save(p, x=a, y=b)
        got = eingrad.io.load_npz(p)
        assert list(got) == ["x", "y"]
        np.testing.assert_array_equal(got["x"].numpy(), a)
        np.testing.assert_array_equal(got["y"].numpy(), b)
    (tmp_path / "bad.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="bad.npz"):
        eingrad.io.load_npz(tmp_path / "bad.npz")
    with pytest.raises(TypeError, match="path must be a str"):
        eingrad.io.load_npz(3)


def test_safetensors_files_are_read_by_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    p = tmp_path / "x.safetensors"
    a = np.arange(6.0).reshape(2, 3)
    eingrad.io.save_safetensors({"a": eingrad.tensor(a, dtype=eingrad.float64)}, p)
    np.testing.assert_array_equal(st.load_file(str(p))["a"], a)
    st.save_file({"z": a.astype(np.float32)}, str(p))
    np.testing.assert_array_equal(eingrad.io.load_safetensors(p)["z"].numpy(), a)


def test_torch_checkpoint_in_safetensors_loads_into_an_eingrad_model(tmp_path):
    torch = pytest.importorskip("torch")
    sft = pytest.importorskip("safetensors.torch")
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    p = tmp_path / "torch.safetensors"
    sft.save_file(tm.state_dict(), str(p))
    em = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    em.load_state_dict(eingrad.io.load_safetensors(p))
    x = np.random.default_rng(3).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(em(eingrad.tensor(x)).numpy(),
                               tm(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
