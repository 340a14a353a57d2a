//! NumPy's npz archives: a zip file with one npy file per array, named `NAME.npy`. Written
//! uncompressed, as `np.savez` does; read stored or deflated (`np.savez_compressed`).

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::io::{Cursor, Read, Seek, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use super::file::{read_all, write_atomic_file, Ctx};
use super::npy::{read_npy, write_npy};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Writes `arrays` (each with its name, any layout) to an npz archive at `path`, in the
/// order given, as `np.savez(path, **arrays)` would (uncompressed members `NAME.npy`;
/// timestamps fixed at 1980-01-01 so the same arrays give the same bytes). Atomic (see
/// [`crate::io::write_atomic`]).
///
/// Errors: [`Error::InvalidArgument`] when two arrays share a name; [`Error::File`] when the
/// file cannot be written.
///
/// ```
/// use eingrad::{io, DType, Tensor};
/// let path = std::env::temp_dir().join("eingrad_doc_save.npz");
/// let w = Tensor::randn(&[2, 3], DType::F32, 0).unwrap();
/// let b = Tensor::zeros(&[3], DType::F64).unwrap();
/// io::save_npz(&path, &[("w", &w), ("b", &b)]).unwrap();
/// let arrays = io::load_npz(&path).unwrap();
/// assert_eq!(arrays[0].0, "w");
/// assert_eq!(arrays[1].1.dims(), &[3]);
/// ```
pub fn save_npz<N: AsRef<str>, T: Borrow<Tensor>>(
    path: impl AsRef<Path>,
    arrays: &[(N, T)],
) -> Result<()> {
    let op = "save_npz";
    check_names(op, arrays)?;
    write_atomic_file(op, path.as_ref(), |w| {
        write_npz(op, arrays, w)?;
        Ok(())
    })
}

/// The bytes [`save_npz`] would write.
///
/// ```
/// let t = eingrad::Tensor::ones(&[2], eingrad::DType::F64).unwrap();
/// let bytes = eingrad::io::to_npz_bytes(&[("x", &t)]).unwrap();
/// assert!(bytes.starts_with(b"PK\x03\x04"));
/// assert_eq!(eingrad::io::from_npz_bytes(&bytes).unwrap()[0].0, "x");
/// ```
pub fn to_npz_bytes<N: AsRef<str>, T: Borrow<Tensor>>(arrays: &[(N, T)]) -> Result<Vec<u8>> {
    let op = "to_npz_bytes";
    check_names(op, arrays)?;
    Ok(write_npz(op, arrays, Cursor::new(Vec::new()))?.into_inner())
}

/// Reads an npz archive: every member named `NAME.npy` (stored or deflated) as the array
/// `NAME`, in archive order, each read as [`crate::io::load_npy`] reads a file (float32 and
/// float64, C or Fortran order, either byte order). Other members are skipped, as NumPy
/// does not list them among the arrays either.
///
/// Errors: [`Error::File`] when the file cannot be read; [`Error::Format`] when it is not a
/// zip archive, a member is corrupt (a bad checksum, a size that lies) or two share a name,
/// or an array is not one [`crate::io::load_npy`] reads (naming the array).
///
/// ```
/// let path = std::env::temp_dir().join("eingrad_doc_load.npz");
/// let t = eingrad::Tensor::eye(2, eingrad::DType::F64).unwrap();
/// eingrad::io::save_npz(&path, &[("eye", &t)]).unwrap();
/// let arrays = eingrad::io::load_npz(&path).unwrap();
/// assert_eq!(arrays[0].1.to_vec::<f64>().unwrap(), vec![1.0, 0.0, 0.0, 1.0]);
/// ```
pub fn load_npz(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>> {
    let path = path.as_ref();
    let bytes = read_all("load_npz", path)?;
    read_npz(&Ctx::file("load_npz", path), &bytes)
}

/// [`load_npz`] from the bytes of a file.
///
/// ```
/// let e = eingrad::io::from_npz_bytes(b"PK\x05\x06").unwrap_err();
/// assert!(e.to_string().contains("zip"), "{e}");
/// ```
pub fn from_npz_bytes(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    read_npz(&Ctx::memory("from_npz_bytes"), bytes)
}

/// Two arrays may not share a name (they would share a member).
fn check_names<N: AsRef<str>, T>(op: &'static str, arrays: &[(N, T)]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for (name, _) in arrays {
        if !seen.insert(name.as_ref()) {
            return Err(Error::arg(
                op,
                "arrays",
                format!("two arrays are named {:?}", name.as_ref()),
            ));
        }
    }
    Ok(())
}

/// Writes the archive to `w` and hands it back.
fn write_npz<N: AsRef<str>, T: Borrow<Tensor>, W: Write + Seek>(
    op: &'static str,
    arrays: &[(N, T)],
    w: W,
) -> Result<W> {
    let zip_err = |name: &str, e: zip::result::ZipError| -> Error {
        match e {
            zip::result::ZipError::Io(e) => Error::Io(e),
            e => Error::arg(op, "arrays", format!("array {name:?}: {e}")),
        }
    };
    let mut zip = ZipWriter::new(w);
    for (name, t) in arrays {
        let (name, t) = (name.as_ref(), t.borrow());
        // Zip64 sizes only for a member that needs them (NumPy always writes them; both read
        // either).
        let big = t.numel().saturating_mul(t.dtype().size_in_bytes()) as u64 > 0xFFFF_0000;
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .last_modified_time(DateTime::default())
            .large_file(big);
        zip.start_file(format!("{name}.npy"), options)
            .map_err(|e| zip_err(name, e))?;
        write_npy(t, &mut zip)?;
    }
    zip.finish().map_err(|e| zip_err("", e))
}

/// Reads a whole archive.
fn read_npz(ctx: &Ctx, bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ctx.format(None, format!("not a zip archive: {e}")))?;
    let mut out: Vec<(String, Tensor)> = Vec::new();
    let mut seen = BTreeSet::new();
    for i in 0..archive.len() {
        let mut member = archive
            .by_index(i)
            .map_err(|e| ctx.format(None, format!("member {i}: {e}")))?;
        let member_name = member
            .name()
            .map_err(|e| ctx.format(None, format!("member {i} has no readable name: {e}")))?
            .into_owned();
        let Some(name) = npyz::npz::array_name_from_file_name(&member_name) else {
            continue;
        };
        if member.is_dir() {
            continue;
        }
        let name = name.to_string();
        if !seen.insert(name.clone()) {
            return Err(ctx.format(Some(&name), "two members hold this array"));
        }
        // The declared size is not trusted: the buffer grows only as decompressed bytes
        // arrive, and one byte past the declared size is an error.
        let declared = member.size();
        let mut buf = Vec::new();
        (&mut member)
            .take(declared.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| ctx.format(Some(&name), format!("cannot read {member_name}: {e}")))?;
        if buf.len() as u64 != declared {
            return Err(ctx.format(
                Some(&name),
                format!(
                    "{member_name} holds {} bytes but the archive says {declared}{}",
                    buf.len(),
                    if buf.len() as u64 > declared {
                        " (or more)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        let t = read_npy(ctx, Some(&name), &buf)?;
        out.push((name, t));
    }
    Ok(out)
}
