//! NumPy's npy files: a magic string, a header (a Python dict literal with the dtype, the
//! order and the shape), then the raw elements.
//!
//! The header is parsed by the `npyz` crate, after checks of our own that keep it from
//! allocating more than the file holds, recursing deeply or overflowing a shape product.
//! Headers are written here, byte for byte as `np.save` writes them.

use std::io::Write;
use std::path::Path;

use npyz::{Endianness, NpyHeader, Order, TypeChar};

use super::file::{decode, read_all, write_atomic_file, write_le, Ctx};
use crate::dtype::DType;
use crate::error::Result;
use crate::tensor::Tensor;

/// The first six bytes of every npy file.
const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// The deepest bracket nesting a header may have (a float array's has 2).
const MAX_DEPTH: usize = 32;

/// Writes `tensor` (any layout) to an npy file at `path` as `np.save` would: C order,
/// little-endian `<f4` or `<f8`, the same header bytes. Atomic (see
/// [`crate::io::write_atomic`]).
///
/// Errors: [`crate::Error::File`] when the file cannot be written.
///
/// ```
/// use eingrad::{io, DType, Tensor};
/// let path = std::env::temp_dir().join("eingrad_doc_save.npy");
/// let t = Tensor::arange(0.0, 6.0, 1.0, DType::F32).unwrap().reshape(&[2, 3]).unwrap();
/// io::save_npy(&path, &t.t().unwrap()).unwrap();
/// let back = io::load_npy(&path).unwrap();
/// assert_eq!(back.dims(), &[3, 2]);
/// assert_eq!(back.to_vec::<f32>().unwrap(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
/// ```
pub fn save_npy(path: impl AsRef<Path>, tensor: &Tensor) -> Result<()> {
    write_atomic_file("save_npy", path.as_ref(), |w| write_npy(tensor, w))
}

/// The bytes [`save_npy`] would write.
///
/// ```
/// let t = eingrad::Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap();
/// let bytes = eingrad::io::to_npy_bytes(&t).unwrap();
/// assert!(bytes.starts_with(b"\x93NUMPY\x01\x00"));
/// assert_eq!(bytes.len(), 128 + 16); // header padded to 64 bytes, as NumPy does
/// ```
pub fn to_npy_bytes(tensor: &Tensor) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write_npy(tensor, &mut out)?;
    Ok(out)
}

/// Reads an npy file of float32 or float64 (`'<f4'`, `'>f4'`, `'<f8'`, `'>f8'`), in C or
/// Fortran order, of any shape (0-d and empty included), into a row-major tensor of that
/// dtype.
///
/// Errors: [`crate::Error::File`] when the file cannot be read; [`crate::Error::Format`] when
/// it is not an npy file, is truncated or has bytes left over, its header is malformed, its
/// shape overflows, or its dtype is another (ints, bool, complex, object, structured), which
/// the message names.
///
/// ```
/// let path = std::env::temp_dir().join("eingrad_doc_load.npy");
/// eingrad::io::save_npy(&path, &eingrad::Tensor::scalar(2.5, eingrad::DType::F64)).unwrap();
/// let t = eingrad::io::load_npy(&path).unwrap();
/// assert_eq!((t.dims(), t.item().unwrap()), (&[][..], 2.5));
/// ```
pub fn load_npy(path: impl AsRef<Path>) -> Result<Tensor> {
    let path = path.as_ref();
    let bytes = read_all("load_npy", path)?;
    read_npy(&Ctx::file("load_npy", path), None, &bytes)
}

/// [`load_npy`] from the bytes of a file.
///
/// ```
/// let t = eingrad::Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap();
/// let bytes = eingrad::io::to_npy_bytes(&t).unwrap();
/// assert_eq!(eingrad::io::from_npy_bytes(&bytes).unwrap().to_vec::<f32>().unwrap(), [1.0, 2.0, 3.0]);
/// assert!(eingrad::io::from_npy_bytes(&bytes[..bytes.len() - 1]).is_err());
/// ```
pub fn from_npy_bytes(bytes: &[u8]) -> Result<Tensor> {
    read_npy(&Ctx::memory("from_npy_bytes"), None, bytes)
}

/// `np.save`'s header for a C-order little-endian array of `dtype` and `shape`: the dict
/// literal with sorted keys, 21 spare spaces minus the first dim's digits (room to grow it in
/// place), padded with spaces and a newline so the data starts at a multiple of 64 bytes.
fn header(dtype: DType, shape: &[usize]) -> Vec<u8> {
    let descr = match dtype {
        DType::F32 => "<f4",
        DType::F64 => "<f8",
    };
    let dims = match shape {
        [d] => format!("({d},)"),
        _ => {
            let s: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", s.join(", "))
        }
    };
    let mut text = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
    if let Some(d) = shape.first() {
        text.extend(std::iter::repeat_n(
            ' ',
            21usize.saturating_sub(d.to_string().len()),
        ));
    }
    // Version 1.0 (a u16 length) while it fits, as NumPy chooses; 2.0 beyond.
    let v1 = text.len() + 1 + 64 < 65536;
    let before = if v1 { 10 } else { 12 };
    let pad = 64 - (before + text.len() + 1) % 64;
    text.extend(std::iter::repeat_n(' ', pad));
    text.push('\n');
    let mut out = MAGIC.to_vec();
    if v1 {
        out.extend([1, 0]);
        out.extend((text.len() as u16).to_le_bytes());
    } else {
        out.extend([2, 0]);
        out.extend((text.len() as u32).to_le_bytes());
    }
    out.extend(text.into_bytes());
    out
}

/// Writes a whole npy file to `w`.
pub(crate) fn write_npy(t: &Tensor, w: &mut dyn Write) -> Result<()> {
    w.write_all(&header(t.dtype(), t.dims()))?;
    write_le(t, w)
}

/// Checks a header's text before `npyz` sees it: brackets nest at most [`MAX_DEPTH`] deep
/// (its parser recurses), and the product of every nonzero number in it fits in a u64 (it
/// multiplies the shape without checking). Strings are not told apart: digits in them only
/// make the check stricter, and a float array's header holds none but its item size.
fn precheck(text: &[u8]) -> std::result::Result<(), String> {
    let (mut depth, mut product, mut run) = (0usize, 1u128, None::<u128>);
    for &b in text.iter().chain(std::iter::once(&b' ')) {
        if b.is_ascii_digit() {
            let d = u128::from(b - b'0');
            run = Some(run.unwrap_or(0).saturating_mul(10).saturating_add(d));
            continue;
        }
        if let Some(n) = run.take().filter(|&n| n > 0) {
            product = product.saturating_mul(n);
            if product > u128::from(u64::MAX) {
                return Err("the header's shape (its numbers) multiplies past 2^64".into());
            }
        }
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!("the header nests deeper than {MAX_DEPTH} brackets"));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Reads a whole npy file (an npz member when `key` names it).
pub(crate) fn read_npy(ctx: &Ctx, key: Option<&str>, bytes: &[u8]) -> Result<Tensor> {
    let bad = |msg: String| ctx.format(key, msg);
    if bytes.len() < 8 || &bytes[..6] != MAGIC {
        return Err(bad(
            "not an npy file: it does not start with \\x93NUMPY and a version".into(),
        ));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let len_size = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => {
            return Err(bad(format!(
                "npy format version {major}.{minor} is not supported (1.0, 2.0 and 3.0 are)"
            )))
        }
    };
    let Some(len) = bytes.get(8..8 + len_size) else {
        return Err(bad("the file ends inside the header length".into()));
    };
    let header_len = len
        .iter()
        .rev()
        .fold(0usize, |n, &b| (n << 8) | usize::from(b));
    let start = 8 + len_size;
    let Some(text) = bytes.get(start..start.saturating_add(header_len)) else {
        return Err(bad(format!(
            "the header length {header_len} runs past the end of the file ({} bytes)",
            bytes.len()
        )));
    };
    let data = &bytes[start + header_len..];
    precheck(text).map_err(&bad)?;
    let header = NpyHeader::from_reader(&bytes[..start + header_len])
        .map_err(|e| bad(format!("cannot parse the header: {e}")))?;
    let dtype = header.dtype();
    let descr = dtype.descr();
    let plain = match &dtype {
        npyz::DType::Plain(ts) if ts.type_char() == TypeChar::Float => {
            match (ts.size_field(), ts.endianness()) {
                (4 | 8, Endianness::Little) => Some((ts.size_field(), false)),
                (4 | 8, Endianness::Big) => Some((ts.size_field(), true)),
                _ => None,
            }
        }
        _ => None,
    };
    let Some((size, big)) = plain else {
        return Err(bad(format!(
            "dtype {descr} is not supported: eingrad reads float32 and float64 ('<f4', '>f4', \
             '<f8', '>f8')"
        )));
    };
    let dims: Option<Vec<usize>> = header
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect();
    let nbytes = dims.as_ref().and_then(|dims| {
        dims.iter()
            .try_fold(size as usize, |n, &d| n.checked_mul(d))
    });
    let (Some(dims), Some(nbytes)) = (dims, nbytes) else {
        return Err(bad(format!(
            "shape {:?} of {descr} overflows",
            header.shape()
        )));
    };
    if data.len() != nbytes {
        return Err(bad(format!(
            "shape {dims:?} of {descr} needs {nbytes} data bytes but the file holds {}",
            data.len()
        )));
    }
    let fortran = header.order() == Order::Fortran && dims.len() > 1;
    let stored: Vec<usize> = if fortran {
        dims.iter().rev().copied().collect()
    } else {
        dims.clone()
    };
    let t = match (size, big) {
        (4, false) => Tensor::from_vec(decode(data, f32::from_le_bytes), &stored),
        (4, true) => Tensor::from_vec(decode(data, f32::from_be_bytes), &stored),
        (_, false) => Tensor::from_vec(decode(data, f64::from_le_bytes), &stored),
        (_, true) => Tensor::from_vec(decode(data, f64::from_be_bytes), &stored),
    };
    let mut t = t.map_err(|e| bad(e.to_string()))?;
    if fortran {
        // Fortran order is C order of the reversed shape: reverse the dims back, then copy.
        let perm: Vec<usize> = (0..dims.len()).rev().collect();
        t = t
            .permute(&perm)
            .and_then(|p| p.contiguous())
            .map_err(|e| bad(e.to_string()))?;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_numpys() {
        // Bytes from NumPy 2.4's np.save.
        let h = header(DType::F32, &[2, 3]);
        let want =
            b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        assert_eq!(&h[..want.len()], want);
        assert_eq!(h.len(), 128);
        assert_eq!(h[127], b'\n');
        let h = header(DType::F64, &[]);
        assert!(String::from_utf8_lossy(&h).contains("'shape': (), }    "));
        assert_eq!(h.len(), 128);
        assert!(String::from_utf8_lossy(&header(DType::F64, &[3])).contains("'shape': (3,), }"));
    }

    #[test]
    fn the_precheck_refuses_deep_nesting_and_overflowing_numbers() {
        assert!(precheck(b"{'descr': '<f8', 'shape': (0, 3), }").is_ok());
        assert!(precheck(b"{'shape': (4294967296, 4294967296), }").is_err());
        assert!(precheck(b"{'shape': (4294967296, 0, 4294967295), }").is_ok());
        assert!(precheck(&[b'['; 40]).is_err());
        assert!(precheck(b"99999999999999999999999999999999999999999999999").is_err());
    }
}
