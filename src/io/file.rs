//! What every reader and writer shares: the error context (call and path), reading a whole
//! file, and the atomic write (temporary file, fsync, rename).

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Where a reader or writer is: the public call and the file (`<memory>` for a buffer), so
/// that every error names both.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) op: &'static str,
    pub(crate) path: &'a Path,
}

impl<'a> Ctx<'a> {
    /// The context of a call on a file.
    pub(crate) fn file(op: &'static str, path: &'a Path) -> Self {
        Ctx { op, path }
    }
    /// The context of a call on a byte buffer.
    pub(crate) fn memory(op: &'static str) -> Self {
        Ctx {
            op,
            path: Path::new("<memory>"),
        }
    }
    /// A [`Error::Format`] about `key` (a tensor or array name), or about the whole file.
    pub(crate) fn format(&self, key: Option<&str>, msg: impl Into<String>) -> Error {
        Error::Format {
            op: self.op,
            path: self.path.to_path_buf(),
            key: key.map(str::to_string),
            msg: msg.into(),
        }
    }
    /// A [`Error::File`] for an OS error on `path`.
    pub(crate) fn os(&self, path: &Path, error: std::io::Error) -> Error {
        Error::File {
            op: self.op,
            path: path.to_path_buf(),
            error,
        }
    }
}

/// The whole file at `path` (its size is the real byte count every later check is against).
pub(crate) fn read_all(op: &'static str, path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| Ctx::file(op, path).os(path, e))
}

/// Distinguishes the temporary files of one process.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// Removes the temporary file when dropped (an error or a panic in the writer), unless the
/// rename has already moved it onto the target.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes the file at `path` all at once or not at all: `write` fills a temporary file in the
/// same directory (named `.NAME.PID.N.tmp`, through a buffer), which is then flushed, synced
/// to disk and renamed over `path`. If `write` (or the flush, the sync, the rename) fails, or
/// panics, the temporary file is removed and `path` is left as it was; a process killed
/// midway leaves `path` as it was too (and at most a stray temporary file beside it), never a
/// truncated file. The new file has fresh default permissions, and a symlink at `path` is
/// replaced, not followed.
///
/// Errors: whatever `write` returns, except that an [`Error::Io`] becomes an [`Error::File`]
/// naming the temporary file; [`Error::File`] naming the temporary file or `path` when the
/// OS refuses; [`Error::InvalidArgument`] when `path` names no file.
///
/// ```
/// use std::io::Write;
/// let path = std::env::temp_dir().join("eingrad_doc_write_atomic.txt");
/// eingrad::io::write_atomic(&path, |w| {
///     w.write_all(b"step 100\n")?;
///     Ok(())
/// })
/// .unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"step 100\n");
/// // A writer that fails leaves the old contents.
/// let err = eingrad::io::write_atomic(&path, |w| {
///     w.write_all(b"step 2")?;
///     Err(std::io::Error::other("disk on fire").into())
/// });
/// assert!(err.is_err());
/// assert_eq!(std::fs::read(&path).unwrap(), b"step 100\n");
/// ```
pub fn write_atomic<F>(path: impl AsRef<Path>, write: F) -> Result<()>
where
    F: FnOnce(&mut dyn Write) -> Result<()>,
{
    write_atomic_file("write_atomic", path.as_ref(), |w| write(w))
}

/// [`write_atomic`] on behalf of `op`, handing the writer a seekable buffered file (the npz
/// writer needs to seek).
pub(crate) fn write_atomic_file<F>(op: &'static str, path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> Result<()>,
{
    let ctx = Ctx::file(op, path);
    let Some(name) = path.file_name() else {
        return Err(Error::arg(
            op,
            "path",
            format!("{} names no file", path.display()),
        ));
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let (file, temp) = create_temp(&ctx, dir, name)?;
    let mut guard = TempFile {
        path: temp,
        keep: false,
    };
    let mut w = BufWriter::new(file);
    // An OS error inside the writer is about the temporary file: say so.
    write(&mut w).map_err(|e| match e {
        Error::Io(e) => ctx.os(&guard.path, e),
        e => e,
    })?;
    let file = w
        .into_inner()
        .map_err(|e| ctx.os(&guard.path, e.into_error()))?;
    file.sync_all().map_err(|e| ctx.os(&guard.path, e))?;
    drop(file);
    fs::rename(&guard.path, path).map_err(|e| ctx.os(path, e))?;
    guard.keep = true;
    sync_dir(dir);
    Ok(())
}

/// A new temporary file in `dir` beside `name` (never an existing one).
fn create_temp(ctx: &Ctx, dir: &Path, name: &std::ffi::OsStr) -> Result<(File, PathBuf)> {
    let pid = std::process::id();
    let mut tries = 0;
    loop {
        let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{pid}.{n}.tmp"));
        let temp = dir.join(temp_name);
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(f) => return Ok((f, temp)),
            // A stray file from a killed process with the same pid: take the next number.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 64 => tries += 1,
            Err(e) => return Err(ctx.os(&temp, e)),
        }
    }
}

/// Makes the rename itself durable (best effort: some file systems cannot sync a directory,
/// and the data is already safe either way).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Writes the elements of `t` in row-major order as little-endian bytes (any layout; a
/// buffer of 64 KiB at a time, beside one copy of the values).
pub(crate) fn write_le(t: &Tensor, w: &mut dyn Write) -> Result<()> {
    match t.dtype() {
        DType::F32 => write_elems(&t.to_vec::<f32>()?, w, f32::to_le_bytes),
        DType::F64 => write_elems(&t.to_vec::<f64>()?, w, f64::to_le_bytes),
    }
}

fn write_elems<T: Copy, const N: usize>(
    v: &[T],
    w: &mut dyn Write,
    bytes: fn(T) -> [u8; N],
) -> Result<()> {
    let mut buf = Vec::with_capacity(1 << 16);
    for chunk in v.chunks((1 << 16) / N) {
        buf.clear();
        for &x in chunk {
            buf.extend_from_slice(&bytes(x));
        }
        w.write_all(&buf)?;
    }
    Ok(())
}

/// The elements of `raw` (whose length the caller has checked to be a multiple of `N`), each
/// made from its `N` bytes.
pub(crate) fn decode<T, const N: usize>(raw: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    raw.chunks_exact(N)
        .map(|c| f(c.try_into().unwrap_or([0; N])))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("eingrad_file_{}_{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_panicking_writer_leaves_the_target_and_no_temp_file() {
        let dir = scratch("panic");
        let path = dir.join("x.bin");
        fs::write(&path, b"old").unwrap();
        let r = std::panic::catch_unwind(|| {
            write_atomic(&path, |w| {
                w.write_all(b"new")?;
                panic!("writer panics");
            })
        });
        assert!(r.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(entries(&dir), vec!["x.bin".to_string()]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_path_without_a_file_name_is_an_argument_error() {
        let e = write_atomic("/", |_| Ok(())).unwrap_err();
        assert!(
            matches!(e, Error::InvalidArgument { arg: "path", .. }),
            "{e}"
        );
    }

    #[test]
    fn a_missing_directory_names_the_temporary_file() {
        let e = write_atomic("/no/such/dir/eingrad.bin", |_| Ok(())).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(
                e,
                Error::File {
                    op: "write_atomic",
                    ..
                }
            ),
            "{msg}"
        );
        assert!(msg.contains("/no/such/dir/.eingrad.bin."), "{msg}");
    }
}
