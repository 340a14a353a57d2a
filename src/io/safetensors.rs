//! safetensors files: an 8-byte little-endian header length, a JSON header naming each
//! tensor's dtype, shape and byte range, then the raw little-endian data.
//!
//! Reading goes through the `safetensors` crate's validating parser, after a pass of our own
//! that names the tensor at fault (and keeps offsets that run past the file from reaching the
//! crate's arithmetic). Writing lays the file out exactly as the crate (and so PyTorch's
//! `save_file`) does (tensors sorted by dtype alignment, then name; the header padded with
//! spaces to a multiple of 8) but writes `__metadata__` in key order, so the same tensors and
//! metadata always give the same bytes (the crate takes a `HashMap` and does not).

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use ::safetensors::tensor::{Dtype, Metadata, SafeTensors};
use serde_json::Value;

use super::file::{decode, read_all, write_atomic_file, write_le, Ctx};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The longest header the `safetensors` crate accepts (100 MB).
const MAX_HEADER: u64 = 100_000_000;

/// The tensors and string metadata of a safetensors file, as [`load_safetensors`] reads them.
///
/// ```
/// use std::collections::BTreeMap;
/// use eingrad::{io, Tensor};
/// let w = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
/// let bytes = io::to_safetensors_bytes(&[("w", &w)], &BTreeMap::new()).unwrap();
/// let file = io::from_safetensors_bytes(&bytes).unwrap();
/// assert_eq!(file.tensors.len(), 1);
/// assert_eq!(file.get("w").unwrap().to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
/// assert!(file.get("b").is_none() && file.metadata.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct SafeTensorsFile {
    /// Every tensor with its name, in file order (by data offset). F32 and F64 tensors keep
    /// their dtype; BF16 and F16 ones come as F32 (an exact conversion). None requires grad.
    pub tensors: Vec<(String, Tensor)>,
    /// The `__metadata__` strings (empty when the file has none).
    pub metadata: BTreeMap<String, String>,
}

impl SafeTensorsFile {
    /// The tensor named `name`, if the file has one.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// let t = eingrad::Tensor::zeros(&[2, 2], eingrad::DType::F64).unwrap();
    /// let bytes = eingrad::io::to_safetensors_bytes(&[("a.weight", &t)], &BTreeMap::new()).unwrap();
    /// let file = eingrad::io::from_safetensors_bytes(&bytes).unwrap();
    /// assert_eq!(file.get("a.weight").unwrap().dims(), &[2, 2]);
    /// ```
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// Writes `tensors` (each with its name, any layout: strided views are written in row-major
/// order) and `metadata` (as `__metadata__`, left out when empty) to a safetensors file at
/// `path`, atomically (see [`crate::io::write_atomic`]). Only the values are written, never
/// gradients or graph. The file holds the tensors in the order PyTorch's `save_file` uses
/// (F64 before F32, then by name), so loading gives them back in that order; the bytes depend
/// only on the tensors and metadata.
///
/// Errors: [`Error::InvalidArgument`] when two tensors share a name or one is named
/// `__metadata__`; [`Error::File`] when the file cannot be written.
///
/// ```
/// use std::collections::BTreeMap;
/// use eingrad::{io, DType, Tensor};
/// let w = Tensor::randn(&[3, 2], DType::F32, 0).unwrap();
/// let b = Tensor::zeros(&[2], DType::F64).unwrap();
/// let meta = BTreeMap::from([("step".to_string(), "100".to_string())]);
/// let path = std::env::temp_dir().join("eingrad_doc_save.safetensors");
/// io::save_safetensors(&path, &[("w", &w.transpose(0, 1).unwrap()), ("b", &b)], &meta).unwrap();
/// let file = io::load_safetensors(&path).unwrap();
/// assert_eq!(file.metadata["step"], "100");
/// assert_eq!(file.get("w").unwrap().dims(), &[2, 3]);
/// assert_eq!(file.tensors[0].0, "b"); // F64 before F32
/// ```
pub fn save_safetensors<N: AsRef<str>, T: Borrow<Tensor>>(
    path: impl AsRef<Path>,
    tensors: &[(N, T)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let op = "save_safetensors";
    let layout = plan(op, tensors)?;
    write_atomic_file(op, path.as_ref(), |w| write(&layout, metadata, w))
}

/// The bytes [`save_safetensors`] would write.
///
/// ```
/// use std::collections::BTreeMap;
/// let t = eingrad::Tensor::scalar(0.5, eingrad::DType::F32);
/// let bytes = eingrad::io::to_safetensors_bytes(&[("s", &t)], &BTreeMap::new()).unwrap();
/// assert_eq!(&bytes[8..13], b"{\"s\":");
/// assert_eq!(bytes.len() % 8, 4); // header padded to 8 bytes, then one f32
/// ```
pub fn to_safetensors_bytes<N: AsRef<str>, T: Borrow<Tensor>>(
    tensors: &[(N, T)],
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let op = "to_safetensors_bytes";
    let layout = plan(op, tensors)?;
    let mut out = Vec::new();
    write(&layout, metadata, &mut out)?;
    Ok(out)
}

/// Reads a safetensors file: every tensor in file order, and the metadata. F32 and F64 are
/// read as they are, BF16 and F16 converted exactly to F32.
///
/// Errors: [`Error::File`] when the file cannot be read; [`Error::Format`] (naming the
/// tensor when one is at fault) when it is truncated or malformed, its header lies about
/// shapes or offsets, or a tensor has another dtype (integers, bool, F8, ...).
///
/// ```
/// use std::collections::BTreeMap;
/// let path = std::env::temp_dir().join("eingrad_doc_load.safetensors");
/// let x = eingrad::Tensor::arange(0.0, 4.0, 1.0, eingrad::DType::F64).unwrap();
/// eingrad::io::save_safetensors(&path, &[("x", &x)], &BTreeMap::new()).unwrap();
/// let file = eingrad::io::load_safetensors(&path).unwrap();
/// assert_eq!(file.get("x").unwrap().to_vec::<f64>().unwrap(), vec![0.0, 1.0, 2.0, 3.0]);
/// assert!(eingrad::io::load_safetensors("/no/such/file.safetensors").is_err());
/// ```
pub fn load_safetensors(path: impl AsRef<Path>) -> Result<SafeTensorsFile> {
    let path = path.as_ref();
    let bytes = read_all("load_safetensors", path)?;
    parse(Ctx::file("load_safetensors", path), &bytes)
}

/// [`load_safetensors`] from the bytes of a file.
///
/// ```
/// let e = eingrad::io::from_safetensors_bytes(&[1, 0, 0]).unwrap_err();
/// assert!(matches!(e, eingrad::Error::Format { .. }), "{e}");
/// ```
pub fn from_safetensors_bytes(bytes: &[u8]) -> Result<SafeTensorsFile> {
    parse(Ctx::memory("from_safetensors_bytes"), bytes)
}

// ---- Writing ---------------------------------------------------------------------------

/// One tensor to write: its name, the tensor, its file dtype and byte range.
struct Entry<'a> {
    name: &'a str,
    tensor: &'a Tensor,
    dtype: Dtype,
    start: usize,
    end: usize,
}

/// The tensors in file order with their byte ranges (the crate's `prepare`: descending dtype,
/// then name), after checking the names.
fn plan<'a, N: AsRef<str>, T: Borrow<Tensor>>(
    op: &'static str,
    tensors: &'a [(N, T)],
) -> Result<Vec<Entry<'a>>> {
    let mut seen = BTreeSet::new();
    let mut entries = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let (name, t) = (name.as_ref(), t.borrow());
        if name == "__metadata__" {
            return Err(Error::arg(
                op,
                "tensors",
                "a tensor cannot be named \"__metadata__\" (the header's metadata key)",
            ));
        }
        if !seen.insert(name) {
            return Err(Error::arg(
                op,
                "tensors",
                format!("two tensors are named {name:?}"),
            ));
        }
        let dtype = match t.dtype() {
            DType::F32 => Dtype::F32,
            DType::F64 => Dtype::F64,
        };
        entries.push(Entry {
            name,
            tensor: t,
            dtype,
            start: 0,
            end: 0,
        });
    }
    entries.sort_by(|a, b| b.dtype.cmp(&a.dtype).then(a.name.cmp(b.name)));
    let mut offset = 0usize;
    for e in &mut entries {
        let end = e
            .tensor
            .numel()
            .checked_mul(e.tensor.dtype().size_in_bytes())
            .and_then(|n| offset.checked_add(n));
        let Some(end) = end else {
            return Err(Error::arg(
                op,
                "tensors",
                format!("tensor {:?} is too large to write", e.name),
            ));
        };
        (e.start, e.end) = (offset, end);
        offset = end;
    }
    Ok(entries)
}

/// The JSON header, padded with spaces to a multiple of 8 bytes, as the crate writes it.
fn header(entries: &[Entry], metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let json = |s: &str| serde_json::to_string(s).map_err(|e| std::io::Error::other(e.to_string()));
    let mut h = String::from("{");
    if !metadata.is_empty() {
        h.push_str("\"__metadata__\":{");
        for (i, (k, v)) in metadata.iter().enumerate() {
            if i > 0 {
                h.push(',');
            }
            h.push_str(&format!("{}:{}", json(k)?, json(v)?));
        }
        h.push('}');
    }
    for (i, e) in entries.iter().enumerate() {
        if i > 0 || !metadata.is_empty() {
            h.push(',');
        }
        let shape: Vec<String> = e.tensor.dims().iter().map(|d| d.to_string()).collect();
        h.push_str(&format!(
            "{}:{{\"dtype\":\"{:?}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
            json(e.name)?,
            e.dtype,
            shape.join(","),
            e.start,
            e.end
        ));
    }
    h.push('}');
    let mut h = h.into_bytes();
    h.resize(h.len().next_multiple_of(8), b' ');
    Ok(h)
}

/// Writes the whole file to `w`.
fn write(entries: &[Entry], metadata: &BTreeMap<String, String>, w: &mut dyn Write) -> Result<()> {
    let header = header(entries, metadata)?;
    w.write_all(&(header.len() as u64).to_le_bytes())?;
    w.write_all(&header)?;
    for e in entries {
        write_le(e.tensor, w)?;
    }
    Ok(())
}

// ---- Reading ---------------------------------------------------------------------------

/// The element types eingrad reads, and their sizes in bytes.
fn readable(dtype: &str) -> Option<usize> {
    match dtype {
        "F32" => Some(4),
        "F64" => Some(8),
        "BF16" | "F16" => Some(2),
        _ => None,
    }
}

/// The file's header bytes and data bytes, after checking the header length.
fn split<'b>(ctx: &Ctx, bytes: &'b [u8]) -> Result<(&'b [u8], &'b [u8])> {
    let Some((len, rest)) = bytes.split_first_chunk::<8>() else {
        return Err(ctx.format(
            None,
            format!(
                "{} bytes is too short for the 8-byte header length",
                bytes.len()
            ),
        ));
    };
    let n = u64::from_le_bytes(*len);
    if n > rest.len() as u64 {
        return Err(ctx.format(
            None,
            format!(
                "the header length {n} runs past the end of the file ({} bytes)",
                bytes.len()
            ),
        ));
    }
    if n > MAX_HEADER {
        return Err(ctx.format(
            None,
            format!("the header length {n} is over the limit of {MAX_HEADER} bytes"),
        ));
    }
    Ok(rest.split_at(n as usize))
}

/// Our own pass over the header: every tensor has a dtype eingrad reads, a shape whose size
/// does not overflow and matches its byte range, and a byte range inside the data; the
/// metadata is strings. Names the tensor at fault, which the crate's errors do not always do.
fn check_header(ctx: &Ctx, header: &[u8], data_len: usize) -> Result<()> {
    let text = std::str::from_utf8(header)
        .map_err(|e| ctx.format(None, format!("the header is not UTF-8: {e}")))?;
    let map: serde_json::Map<String, Value> = serde_json::from_str(text)
        .map_err(|e| ctx.format(None, format!("the header is not a JSON object: {e}")))?;
    for (name, v) in &map {
        if name == "__metadata__" {
            let strings = v
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string));
            if !strings {
                return Err(ctx.format(Some(name), "metadata must map strings to strings"));
            }
            continue;
        }
        let bad = |msg: String| ctx.format(Some(name), msg);
        let dtype = v.get("dtype").and_then(Value::as_str);
        let shape: Option<Vec<u64>> = v
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let offsets: Option<Vec<u64>> = v
            .get("data_offsets")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let (Some(dtype), Some(shape), Some([start, end])) = (
            dtype,
            shape,
            offsets
                .as_deref()
                .and_then(|o| <[u64; 2]>::try_from(o).ok()),
        ) else {
            return Err(bad(format!(
                "the entry {v} is not {{\"dtype\": str, \"shape\": [uint], \"data_offsets\": \
                 [uint, uint]}}"
            )));
        };
        let Some(size) = readable(dtype) else {
            return Err(bad(format!(
                "dtype {dtype} is not supported: eingrad reads F32, F64, BF16 and F16"
            )));
        };
        if start > end || end > data_len as u64 {
            return Err(bad(format!(
                "data_offsets [{start}, {end}] do not lie within the {data_len} data bytes"
            )));
        }
        let nbytes = shape
            .iter()
            .try_fold(size as u64, |n, &d| n.checked_mul(d))
            .ok_or_else(|| bad(format!("shape {shape:?} of {dtype} overflows")))?;
        if nbytes != end - start {
            return Err(bad(format!(
                "shape {shape:?} of {dtype} needs {nbytes} bytes but data_offsets [{start}, \
                 {end}] hold {}",
                end - start
            )));
        }
    }
    Ok(())
}

/// Reads a whole file.
fn parse(ctx: Ctx, bytes: &[u8]) -> Result<SafeTensorsFile> {
    let (header, data) = split(&ctx, bytes)?;
    check_header(&ctx, header, data.len())?;
    // The crate's own validation: offsets contiguous from 0 and covering all the data.
    let (_, meta): (usize, Metadata) = SafeTensors::read_metadata(bytes).map_err(|e| {
        let key = match &e {
            ::safetensors::SafeTensorError::InvalidOffset(name) => Some(name.as_str()),
            _ => None,
        };
        ctx.format(key, e.to_string())
    })?;
    let mut tensors = Vec::new();
    for name in meta.offset_keys() {
        let Some(info) = meta.info(&name) else {
            return Err(ctx.format(Some(&name), "listed by the header but not found"));
        };
        let (start, end) = info.data_offsets;
        let Some(raw) = data.get(start..end) else {
            return Err(ctx.format(Some(&name), "data_offsets run past the data"));
        };
        let t = match info.dtype {
            Dtype::F64 => Tensor::from_vec(decode(raw, f64::from_le_bytes), &info.shape),
            Dtype::F32 => Tensor::from_vec(decode(raw, f32::from_le_bytes), &info.shape),
            Dtype::BF16 => Tensor::from_vec(
                decode(raw, |b| half::bf16::from_le_bytes(b).to_f32()),
                &info.shape,
            ),
            Dtype::F16 => Tensor::from_vec(
                decode(raw, |b| half::f16::from_le_bytes(b).to_f32()),
                &info.shape,
            ),
            other => {
                return Err(ctx.format(Some(&name), format!("dtype {other:?} is not supported")))
            }
        }
        .map_err(|e| ctx.format(Some(&name), e.to_string()))?;
        tensors.push((name, t));
    }
    let metadata = meta
        .metadata()
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(SafeTensorsFile { tensors, metadata })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Our writer lays out bytes exactly as the crate's `serialize` does (one metadata key, so
    /// that the crate's `HashMap` order cannot differ).
    #[test]
    fn the_writer_matches_the_crates_serializer() {
        let a = Tensor::from_vec(vec![1.0f32, -2.5, 3.0], &[3]).unwrap();
        let b = Tensor::from_vec(vec![0.25f64; 6], &[2, 3]).unwrap();
        let c = Tensor::scalar(7.0, DType::F32);
        let mine = to_safetensors_bytes(
            &[("z", &a), ("b", &b), ("c\"q", &c)],
            &BTreeMap::from([("format".to_string(), "pt".to_string())]),
        )
        .unwrap();
        struct V(Dtype, Vec<usize>, Vec<u8>);
        impl ::safetensors::View for &V {
            fn dtype(&self) -> Dtype {
                self.0
            }
            fn shape(&self) -> &[usize] {
                &self.1
            }
            fn data(&self) -> std::borrow::Cow<'_, [u8]> {
                std::borrow::Cow::Borrowed(&self.2)
            }
            fn data_len(&self) -> usize {
                self.2.len()
            }
        }
        let bytes32 = |t: &Tensor| -> Vec<u8> {
            t.to_vec::<f32>()
                .unwrap()
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect()
        };
        let vb: Vec<u8> = b
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let views = [
            ("z".to_string(), V(Dtype::F32, vec![3], bytes32(&a))),
            ("b".to_string(), V(Dtype::F64, vec![2, 3], vb)),
            ("c\"q".to_string(), V(Dtype::F32, vec![], bytes32(&c))),
        ];
        let theirs = ::safetensors::serialize(
            views.iter().map(|(n, v)| (n.as_str(), v)),
            Some(HashMap::from([("format".to_string(), "pt".to_string())])),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&mine),
            String::from_utf8_lossy(&theirs)
        );
        assert_eq!(mine, theirs);
    }

    #[test]
    fn offsets_far_past_the_end_are_caught_before_the_crate_adds_them() {
        // Nine huge U8 tensors whose offsets sum past usize::MAX would overflow the crate's
        // final size check in a debug build; our pass refuses the first one.
        let mut h = String::from("{");
        let step = 1u64 << 61;
        for i in 0..9u64 {
            if i > 0 {
                h.push(',');
            }
            h.push_str(&format!(
                "\"t{i}\":{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                step / 4,
                i * step,
                (i + 1).wrapping_mul(step)
            ));
        }
        h.push('}');
        let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
        bytes.extend(h.as_bytes());
        let e = from_safetensors_bytes(&bytes).unwrap_err();
        assert!(
            matches!(&e, Error::Format { key: Some(k), .. } if k == "t0"),
            "{e}"
        );
    }
}
