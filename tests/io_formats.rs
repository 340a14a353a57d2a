//! `eingrad::io` against files NumPy and PyTorch wrote, round trips through them, bad input
//! (truncations, corruptions, lying headers, unsupported dtypes, random bytes) and atomic
//! writes.
//!
//! The goldens under `tests/golden/io/` come from `tests/golden/io/make_io_goldens.py`
//! (NumPy 2.4, PyTorch 2.15, safetensors 0.8), which also reads the `eingrad_*` files that
//! this test writes when `EINGRAD_WRITE_IO_GOLDENS=1` and saves them again from NumPy and
//! PyTorch. Order of regeneration: this test with the variable set, then the script. The
//! tests never run Python.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use eingrad::{io, DType, Error, Tensor};
use proptest::prelude::*;
use serde::Deserialize;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/io")
        .join(name)
}

fn read_golden(name: &str) -> Vec<u8> {
    std::fs::read(golden(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A fresh empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eingrad_io_{}_{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The bits of every element, row-major, whatever the dtype (f32 bits widened).
fn bits(t: &Tensor) -> Vec<u64> {
    match t.dtype() {
        DType::F32 => t
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|x| u64::from(x.to_bits()))
            .collect(),
        DType::F64 => t
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect(),
    }
}

fn assert_same(name: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.dtype(), want.dtype(), "{name}: dtype");
    assert_eq!(got.dims(), want.dims(), "{name}: shape");
    assert_eq!(bits(got), bits(want), "{name}: bits");
    assert!(
        !got.requires_grad(),
        "{name}: a loaded tensor requires grad"
    );
}

// ---- The awkward tensors eingrad writes ------------------------------------------------

/// SplitMix64: raw bit patterns that reach every exponent, subnormals and NaN payloads.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn awkward_f64() -> Vec<f64> {
    let mut v = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        f64::MIN_POSITIVE,
        f64::from_bits(1),                     // smallest subnormal
        f64::from_bits(0x000F_FFFF_FFFF_FFFF), // largest subnormal
        -f64::from_bits(0x0000_0000_DEAD_BEEF),
        f64::MAX,
        f64::MIN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::from_bits(0x7FF8_0000_0000_0001), // quiet NaN with a payload
        f64::from_bits(0xFFF0_0000_0000_0ABC), // negative signalling NaN with a payload
        1e-300,
        std::f64::consts::PI * 1e300,
    ];
    let mut s = 64;
    v.extend((0..20).map(|_| f64::from_bits(splitmix(&mut s))));
    v
}

fn awkward_f32() -> Vec<f32> {
    let mut v = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::from_bits(0x007F_FFFF),
        -f32::from_bits(0x0000_BEEF),
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(0x7FC0_1234),
        f32::from_bits(0xFF80_0ABC),
        1e-38,
        std::f32::consts::E * 1e38,
    ];
    let mut s = 32;
    v.extend((0..20).map(|_| f32::from_bits(splitmix(&mut s) as u32)));
    v
}

/// The tensors of the round trips: f64 and f32 matrices, a transposed (strided) view, a
/// 0-d and an empty tensor, and a leaf that requires grad (only its values are written).
fn awkward_tensors() -> Vec<(String, Tensor)> {
    let m64 = Tensor::from_vec(awkward_f64(), &[4, 9]).unwrap();
    let m32 = Tensor::from_vec(awkward_f32(), &[4, 9]).unwrap();
    vec![
        ("layer.0.weight".to_string(), m64.clone()),
        ("m32".to_string(), m32.clone()),
        ("m32_t".to_string(), m32.t().unwrap()),
        ("scalar".to_string(), Tensor::scalar(-0.0, DType::F64)),
        (
            "empty".to_string(),
            Tensor::zeros(&[0, 3], DType::F32).unwrap(),
        ),
        (
            "leaf".to_string(),
            m64.narrow(1, 2, 5).unwrap().requires_grad_(true),
        ),
    ]
}

/// The same tensors as plain contiguous values, for comparisons.
fn awkward_values() -> BTreeMap<String, Tensor> {
    awkward_tensors()
        .into_iter()
        .map(|(n, t)| (n, t.detach().contiguous().unwrap()))
        .collect()
}

fn awkward_metadata() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("format".to_string(), "pt".to_string()),
        (
            "note".to_string(),
            "ünïcode ✓ \"quoted\" \\ back".to_string(),
        ),
        ("step".to_string(), "100".to_string()),
    ])
}

/// The files eingrad writes from [`awkward_tensors`]: name and bytes.
fn eingrad_files() -> Vec<(&'static str, Vec<u8>)> {
    let ts = awkward_tensors();
    let get = |n: &str| ts.iter().find(|(m, _)| m == n).unwrap().1.clone();
    vec![
        (
            "eingrad_awkward.safetensors",
            io::to_safetensors_bytes(&ts, &awkward_metadata()).unwrap(),
        ),
        ("eingrad_awkward.npz", io::to_npz_bytes(&ts).unwrap()),
        (
            "eingrad_awkward_f64.npy",
            io::to_npy_bytes(&get("layer.0.weight")).unwrap(),
        ),
        (
            "eingrad_awkward_f32_t.npy",
            io::to_npy_bytes(&get("m32_t")).unwrap(),
        ),
    ]
}

/// (a) eingrad writes the same bytes as the committed files (the script's inputs), through
/// the in-memory writers and through the file writers.
#[test]
fn eingrad_writes_the_committed_bytes() {
    let files = eingrad_files();
    if std::env::var_os("EINGRAD_WRITE_IO_GOLDENS").is_some() {
        for (name, bytes) in &files {
            std::fs::write(golden(name), bytes).unwrap();
        }
    }
    let dir = scratch("committed");
    let ts = awkward_tensors();
    io::save_safetensors(dir.join("a.safetensors"), &ts, &awkward_metadata()).unwrap();
    io::save_npz(dir.join("a.npz"), &ts).unwrap();
    for (name, bytes) in &files {
        assert!(
            bytes == &read_golden(name),
            "{name} differs from the golden"
        );
    }
    assert_eq!(
        std::fs::read(dir.join("a.safetensors")).unwrap(),
        files[0].1
    );
    assert_eq!(std::fs::read(dir.join("a.npz")).unwrap(), files[1].1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eingrad_files_read_back_bit_identical() {
    let want = awkward_values();
    let st = io::from_safetensors_bytes(&read_golden("eingrad_awkward.safetensors")).unwrap();
    assert_eq!(st.metadata, awkward_metadata());
    // File order: F64 before F32, then by name (PyTorch's order).
    let names: Vec<&str> = st.tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["layer.0.weight", "leaf", "scalar", "empty", "m32", "m32_t"]
    );
    for (name, t) in &st.tensors {
        assert_same(name, t, &want[name]);
    }
    // npz keeps the order given.
    let npz = io::from_npz_bytes(&read_golden("eingrad_awkward.npz")).unwrap();
    let names: Vec<&str> = npz.iter().map(|(n, _)| n.as_str()).collect();
    let given: Vec<String> = awkward_tensors().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, given);
    for (name, t) in &npz {
        assert_same(name, t, &want[name]);
    }
}

/// (b) What PyTorch and NumPy saved again after loading eingrad's files reads back
/// bit-identical, with the same names, shapes and order.
#[test]
fn files_resaved_by_torch_and_numpy_read_back_bit_identical() {
    let want = awkward_values();
    let st = io::load_safetensors(golden("torch_resaved_awkward.safetensors")).unwrap();
    let ours = io::from_safetensors_bytes(&read_golden("eingrad_awkward.safetensors")).unwrap();
    assert_eq!(st.metadata, awkward_metadata());
    let names = |f: &io::SafeTensorsFile| -> Vec<String> {
        f.tensors.iter().map(|(n, _)| n.clone()).collect()
    };
    assert_eq!(names(&st), names(&ours));
    // Byte for byte, PyTorch's file differs from eingrad's only in the order of the metadata
    // keys (the safetensors crate keeps them in a HashMap): same JSON, same data bytes.
    let split = |b: &[u8]| -> (serde_json::Value, Vec<u8>) {
        let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        (
            serde_json::from_slice(&b[8..8 + n]).unwrap(),
            b[8 + n..].to_vec(),
        )
    };
    let (torch_json, torch_data) = split(&read_golden("torch_resaved_awkward.safetensors"));
    let (eingrad_json, eingrad_data) = split(&read_golden("eingrad_awkward.safetensors"));
    assert_eq!(torch_json, eingrad_json);
    assert!(torch_data == eingrad_data, "the data bytes differ");
    for (name, t) in &st.tensors {
        assert_same(name, t, &want[name]);
    }
    let npz = io::load_npz(golden("numpy_resaved_awkward.npz")).unwrap();
    let given: Vec<String> = awkward_tensors().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        npz.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        given
    );
    for (name, t) in &npz {
        assert_same(name, t, &want[name]);
    }
    // NumPy's np.save of the loaded arrays: the same bytes as eingrad's (same header), and
    // the same values from its Fortran-order and big-endian versions.
    for (numpy, ours, key) in [
        (
            "numpy_resaved_awkward_f64.npy",
            "eingrad_awkward_f64.npy",
            "layer.0.weight",
        ),
        (
            "numpy_resaved_awkward_f32_t.npy",
            "eingrad_awkward_f32_t.npy",
            "m32_t",
        ),
    ] {
        assert!(read_golden(numpy) == read_golden(ours), "{numpy} != {ours}");
        assert_same(numpy, &io::load_npy(golden(numpy)).unwrap(), &want[key]);
    }
    for (file, key) in [
        ("numpy_fortran_awkward_f64.npy", "layer.0.weight"),
        ("numpy_fortran_awkward_f32_t.npy", "m32_t"),
        ("numpy_bigendian_awkward_f64.npy", "layer.0.weight"),
        ("numpy_bigendian_fortran_awkward_f32_t.npy", "m32_t"),
    ] {
        assert_same(file, &io::load_npy(golden(file)).unwrap(), &want[key]);
    }
}

// ---- Files NumPy and PyTorch wrote -----------------------------------------------------

/// One array of `expected.json`: where it is, and what it must read as.
#[derive(Deserialize)]
struct Expected {
    file: String,
    key: Option<String>,
    dtype: String,
    shape: Vec<usize>,
    bits: Vec<u64>,
}

fn expected() -> Vec<Expected> {
    serde_json::from_slice(&read_golden("expected.json")).unwrap()
}

#[test]
fn numpy_and_torch_goldens_read_as_expected() {
    let all = expected();
    let mut files: Vec<&str> = all.iter().map(|e| e.file.as_str()).collect();
    files.dedup();
    assert!(files.len() >= 12, "{files:?}");
    for file in files {
        let want: Vec<&Expected> = all.iter().filter(|e| e.file == file).collect();
        let got: Vec<(Option<String>, Tensor)> = if file.ends_with(".npy") {
            vec![(None, io::load_npy(golden(file)).unwrap())]
        } else if file.ends_with(".npz") {
            let v = io::load_npz(golden(file)).unwrap();
            v.into_iter().map(|(n, t)| (Some(n), t)).collect()
        } else {
            let f = io::load_safetensors(golden(file)).unwrap();
            assert_eq!(
                f.metadata.get("origin").map(String::as_str),
                Some("make_io_goldens.py")
            );
            f.tensors.into_iter().map(|(n, t)| (Some(n), t)).collect()
        };
        assert_eq!(got.len(), want.len(), "{file}: number of arrays");
        for ((key, t), e) in got.iter().zip(&want) {
            let at = format!("{file} {key:?}");
            assert_eq!(key, &e.key, "{at}: name or order");
            assert_eq!(format!("{:?}", t.dtype()), e.dtype, "{at}");
            assert_eq!(t.dims(), &e.shape[..], "{at}");
            assert_eq!(bits(t), e.bits, "{at}");
            assert!(t.is_contiguous() && !t.requires_grad(), "{at}");
        }
    }
}

#[test]
fn unsupported_dtypes_are_errors_naming_the_dtype_and_the_key() {
    for (file, key, dtype) in [
        ("np_i64_3.npy", None, "'<i8'"),
        ("np_bool_2.npy", None, "'|b1'"),
        ("np_c16_2.npy", None, "'<c16'"),
        ("np_object_2.npy", None, "'|O'"),
        ("np_f2_3.npy", None, "'<f2'"),
        ("np_structured_2.npy", None, "[("),
        ("np_savez_with_int.npz", Some("n"), "'<i8'"),
        ("torch_i64.safetensors", Some("idx"), "I64"),
        ("torch_f8.safetensors", Some("f8"), "F8_E4M3"),
    ] {
        let path = golden(file);
        let e = if file.ends_with(".npy") {
            io::load_npy(&path).map(|_| ()).unwrap_err()
        } else if file.ends_with(".npz") {
            io::load_npz(&path).map(|_| ()).unwrap_err()
        } else {
            io::load_safetensors(&path).map(|_| ()).unwrap_err()
        };
        let msg = e.to_string();
        match &e {
            Error::Format {
                path: p, key: k, ..
            } => {
                assert_eq!(p, &path, "{msg}");
                assert_eq!(k.as_deref(), key, "{msg}");
            }
            _ => panic!("{file}: not a format error: {msg}"),
        }
        assert!(
            msg.contains(dtype) && msg.contains("not supported"),
            "{msg}"
        );
        assert!(msg.contains(path.to_str().unwrap()), "{msg}");
    }
}

// ---- Writers ----------------------------------------------------------------------------

#[test]
fn writers_take_any_layout_and_names_must_be_unique() {
    let base = Tensor::arange(0.0, 24.0, 1.0, DType::F64)
        .unwrap()
        .reshape(&[4, 6])
        .unwrap();
    let views = [
        base.t().unwrap(),
        base.slice(1, 1, 6, 2).unwrap(),
        base.flip(&[0]).unwrap(),
        Tensor::scalar(3.0, DType::F64).expand(&[2, 3]).unwrap(),
    ];
    for (i, v) in views.iter().enumerate() {
        let want = v.contiguous().unwrap();
        let back = io::from_npy_bytes(&io::to_npy_bytes(v).unwrap()).unwrap();
        assert_same(&format!("npy view {i}"), &back, &want);
        let st = io::to_safetensors_bytes(&[("v", v)], &BTreeMap::new()).unwrap();
        let back = io::from_safetensors_bytes(&st).unwrap();
        assert_same(
            &format!("safetensors view {i}"),
            back.get("v").unwrap(),
            &want,
        );
        let back = io::from_npz_bytes(&io::to_npz_bytes(&[("v", v)]).unwrap()).unwrap();
        assert_same(&format!("npz view {i}"), &back[0].1, &want);
    }
    let t = Tensor::zeros(&[1], DType::F32).unwrap();
    for e in [
        io::to_safetensors_bytes(&[("a", &t), ("a", &t)], &BTreeMap::new()).unwrap_err(),
        io::to_safetensors_bytes(&[("__metadata__", &t)], &BTreeMap::new()).unwrap_err(),
        io::to_npz_bytes(&[("a", &t), ("a", &t)]).unwrap_err(),
    ] {
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    }
    // No tensors at all is a valid (empty) file in every format.
    let none: [(&str, &Tensor); 0] = [];
    assert!(io::from_safetensors_bytes(
        &io::to_safetensors_bytes(&none, &BTreeMap::new()).unwrap()
    )
    .unwrap()
    .tensors
    .is_empty());
    assert!(io::from_npz_bytes(&io::to_npz_bytes(&none).unwrap())
        .unwrap()
        .is_empty());
}

#[test]
fn a_failing_writer_leaves_the_old_file_and_no_temp_file() {
    let dir = scratch("atomic");
    let path = dir.join("ckpt.safetensors");
    std::fs::write(&path, b"the old checkpoint").unwrap();
    let e = io::write_atomic(&path, |w| {
        w.write_all(&[7u8; 5000])?; // more than the buffer: part of it reaches the disk
        Err(Error::InvalidArgument {
            op: "test",
            arg: "w",
            msg: "fails halfway".into(),
        })
    })
    .unwrap_err();
    assert!(e.to_string().contains("fails halfway"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), b"the old checkpoint");
    assert_eq!(dir_entries(&dir), ["ckpt.safetensors"]);
    // A save onto the same path replaces it whole, and leaves nothing else.
    let t = Tensor::ones(&[3], DType::F32).unwrap();
    io::save_safetensors(&path, &[("t", &t)], &BTreeMap::new()).unwrap();
    assert_eq!(io::load_safetensors(&path).unwrap().tensors.len(), 1);
    io::save_npy(dir.join("t.npy"), &t).unwrap();
    io::save_npz(dir.join("t.npz"), &[("t", &t)]).unwrap();
    assert_eq!(dir_entries(&dir), ["ckpt.safetensors", "t.npy", "t.npz"]);
    // A writer error that is an OS error names the temporary file.
    let e =
        io::write_atomic(&path, |_| Err(std::io::Error::other("disk full").into())).unwrap_err();
    match &e {
        Error::File { op, path: p, .. } => {
            assert_eq!(*op, "write_atomic");
            assert!(p.to_string_lossy().contains(".ckpt.safetensors."), "{e}");
        }
        _ => panic!("{e}"),
    }
    assert_eq!(dir_entries(&dir), ["ckpt.safetensors", "t.npy", "t.npz"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_files_and_directories_are_errors_naming_the_path() {
    let missing = Path::new("/no/such/dir/x");
    let t = Tensor::ones(&[1], DType::F32).unwrap();
    let errors = [
        ("load_npy", io::load_npy(missing).map(|_| ()).unwrap_err()),
        ("load_npz", io::load_npz(missing).map(|_| ()).unwrap_err()),
        (
            "load_safetensors",
            io::load_safetensors(missing).map(|_| ()).unwrap_err(),
        ),
        ("save_npy", io::save_npy(missing, &t).unwrap_err()),
        ("save_npz", io::save_npz(missing, &[("t", &t)]).unwrap_err()),
        (
            "save_safetensors",
            io::save_safetensors(missing, &[("t", &t)], &BTreeMap::new()).unwrap_err(),
        ),
    ];
    for (call, e) in errors {
        let msg = e.to_string();
        assert!(matches!(&e, Error::File { op, .. } if *op == call), "{msg}");
        assert!(msg.starts_with(&format!("{call}: /no/such/dir/")), "{msg}");
    }
}

// ---- Bad input ----------------------------------------------------------------------------

/// Every reader on `bytes`: whatever it returns, it returns (no panic, no abort).
fn read_all_ways(bytes: &[u8]) -> [bool; 3] {
    [
        io::from_safetensors_bytes(bytes).is_ok(),
        io::from_npy_bytes(bytes).is_ok(),
        io::from_npz_bytes(bytes).is_ok(),
    ]
}

/// Small valid files of every kind: the seeds of the truncations and mutations.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    [
        "np_f32_2x3.npy",
        "np_fortran_f64_2x3x4.npy",
        "np_be_f8_2x3.npy",
        "np_scalar_f64.npy",
        "np_i64_3.npy",
        "np_savez.npz",
        "np_savez_compressed.npz",
        "torch_mixed.safetensors",
        "eingrad_awkward.safetensors",
    ]
    .into_iter()
    .map(|f| (f, read_golden(f)))
    .collect()
}

#[test]
fn every_truncation_is_an_error_naming_the_file() {
    let dir = scratch("truncated");
    for (name, bytes) in seeds() {
        for len in 0..bytes.len() {
            let cut = &bytes[..len];
            let ok = read_all_ways(cut);
            assert_eq!(ok, [false; 3], "{name} cut to {len} bytes read as {ok:?}");
        }
        // Through a file, the error names it.
        let path = dir.join(name);
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let e = if name.ends_with(".npy") {
            io::load_npy(&path).map(|_| ()).unwrap_err()
        } else if name.ends_with(".npz") {
            io::load_npz(&path).map(|_| ()).unwrap_err()
        } else {
            io::load_safetensors(&path).map(|_| ()).unwrap_err()
        };
        assert!(matches!(e, Error::Format { .. }), "{e}");
        assert!(e.to_string().contains(path.to_str().unwrap()), "{e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A safetensors file with this JSON header and `data` bytes.
fn safetensors_with(header: &str, data: usize) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend(header.as_bytes());
    b.extend(std::iter::repeat_n(0u8, data));
    b
}

/// An npy file with this header dict and `data` bytes.
fn npy_with(dict: &str, data: usize) -> Vec<u8> {
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((dict.len() as u16 + 1).to_le_bytes());
    b.extend(dict.as_bytes());
    b.push(b'\n');
    b.extend(std::iter::repeat_n(0u8, data));
    b
}

#[test]
fn lying_headers_are_errors_naming_the_key() {
    let st = |h: &str, data: usize| {
        io::from_safetensors_bytes(&safetensors_with(h, data))
            .map(|_| ())
            .unwrap_err()
    };
    for (header, data, key, what) in [
        (
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            4,
            Some("w"),
            "within",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
            8,
            Some("w"),
            "needs 12",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#,
            8,
            Some("w"),
            "within",
        ),
        (
            r#"{"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#,
            8,
            Some("w"),
            "overflows",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            8,
            None,
            "",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            8,
            None,
            "",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
            4,
            Some("w"),
            "is not",
        ),
        (
            r#"{"w":{"dtype":"U1","shape":[1],"data_offsets":[0,4]}}"#,
            4,
            Some("w"),
            "U1",
        ),
        (
            r#"{"__metadata__":{"a":1}}"#,
            0,
            Some("__metadata__"),
            "strings",
        ),
        (r#"["w"]"#, 0, None, "JSON object"),
        (r#"{"w":"#, 0, None, "JSON object"),
    ] {
        let e = st(header, data);
        let msg = e.to_string();
        match &e {
            Error::Format { key: k, .. } => {
                if key.is_some() {
                    assert_eq!(k.as_deref(), key, "{msg}");
                }
            }
            _ => panic!("{msg}"),
        }
        assert!(msg.contains(what), "{msg}");
    }
    // A header length past the end, or absurdly large.
    for n in [100u64, u64::MAX, 1 << 40] {
        let mut b = n.to_le_bytes().to_vec();
        b.extend(b"{}");
        assert!(io::from_safetensors_bytes(&b).is_err());
    }

    let npy = |dict: &str, data: usize| {
        io::from_npy_bytes(&npy_with(dict, data))
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    for (dict, data, what) in [
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20, "needs 24"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28, "needs 24"),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
            8,
            "2^64",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296), }",
            0,
            "2^64",
        ),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (-2,), }", 16, "negative"),
        ("{'descr': '<f8', 'fortran_order': 0, 'shape': (2,), }", 16, "bool"),
        ("{'descr': '<f8', 'shape': (2,), }", 16, "fortran_order"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (((((((((((((((((((((((((((((((((((2,),),),),),),),),),),),),),),),),),),),),),),),),),),),),),),),),),), }", 16, "nests"),
        ("{'descr': 'zz', 'fortran_order': False, 'shape': (2,), }", 16, "parse"),
        ("not a dict", 0, "parse"),
    ] {
        let msg = npy(dict, data);
        assert!(msg.contains(what), "{dict}: {msg}");
    }
    // A header length past the end; an unknown version.
    let mut b = npy_with("{}", 0);
    b[8] = 0xFF;
    assert!(io::from_npy_bytes(&b)
        .unwrap_err()
        .to_string()
        .contains("runs past"));
    b[6] = 9;
    assert!(io::from_npy_bytes(&b)
        .unwrap_err()
        .to_string()
        .contains("version 9.0"));
    let mut b = b"\x93NUMPY\x02\x00\xFF\xFF\xFF\xFF".to_vec();
    b.extend(b"{}");
    assert!(io::from_npy_bytes(&b)
        .unwrap_err()
        .to_string()
        .contains("runs past"));
}

#[test]
fn corrupt_npz_members_are_errors_naming_the_array() {
    // Flip a byte of each member's data: stored members fail their checksum, deflated ones
    // their checksum or their stream.
    for file in ["np_savez.npz", "np_savez_compressed.npz"] {
        let bytes = read_golden(file);
        let arrays = io::from_npz_bytes(&bytes).unwrap();
        let mut failures = 0;
        for at in (0..bytes.len()).step_by(7) {
            let mut b = bytes.clone();
            b[at] ^= 0x55;
            if let Err(e) = io::from_npz_bytes(&b) {
                failures += 1;
                assert!(matches!(e, Error::Format { .. }), "{e}");
            }
        }
        assert!(failures > bytes.len() / 14, "{file}: {failures} failures");
        assert!(!arrays.is_empty());
    }
    // An npz with a member that is not an npy file.
    let mut b = read_golden("np_savez.npz");
    let at = b.windows(6).position(|w| w == b"\x93NUMPY").unwrap();
    b[at + 1] = b'X';
    let e = io::from_npz_bytes(&b).unwrap_err();
    assert!(matches!(&e, Error::Format { key: Some(_), .. }), "{e}");
}

#[test]
fn random_bytes_with_each_magic_are_errors() {
    let mut s = 7u64;
    for len in 0..300 {
        for prefix in [
            &b""[..],
            b"\x93NUMPY\x01\x00",
            b"\x93NUMPY\x03\x00",
            b"PK\x03\x04",
            b"PK\x05\x06",
        ] {
            let mut b = prefix.to_vec();
            b.extend((0..len).map(|_| splitmix(&mut s) as u8));
            assert_eq!(read_all_ways(&b), [false; 3], "{b:?}");
        }
    }
}

fn mutated(seed: &[u8], edits: &[(usize, u8, u8)], cut: Option<usize>) -> Vec<u8> {
    let mut b = seed.to_vec();
    for &(at, kind, v) in edits {
        if b.is_empty() {
            break;
        }
        let i = at % b.len();
        match kind % 4 {
            0 => b[i] = v,
            1 => b[i] ^= 1 << (v % 8),
            2 => {
                b.remove(i);
            }
            _ => b.insert(i, v),
        }
    }
    if let Some(c) = cut {
        b.truncate(c % (b.len() + 1));
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random bytes: every reader answers, none panics or allocates past the cap.
    #[test]
    fn readers_survive_random_bytes(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        support::cap_address_space();
        read_all_ways(&b);
    }

    /// Valid files with a few bytes replaced, flipped, removed or inserted, and maybe cut.
    #[test]
    fn readers_survive_mutated_files(
        which in 0usize..9,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        support::cap_address_space();
        static SEEDS: std::sync::OnceLock<Vec<(&str, Vec<u8>)>> = std::sync::OnceLock::new();
        let seeds = SEEDS.get_or_init(seeds);
        let b = mutated(&seeds[which % seeds.len()].1, &edits, cut);
        read_all_ways(&b);
    }
}
