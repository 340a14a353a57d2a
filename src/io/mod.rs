//! Reading and writing tensors in the formats other libraries use: safetensors (PyTorch,
//! Hugging Face), NumPy's npy and npz; and the atomic file write every writer goes through.
//!
//! Every writer writes a temporary file beside the target and renames it over the target
//! once it is complete and synced ([`write_atomic`]), so a failed or killed write never
//! leaves a truncated file. Every reader checks what a file claims (header lengths, offsets,
//! shapes) against the bytes it actually holds before allocating, and answers a malformed
//! file with an [`crate::Error::Format`] naming the file and the tensor at fault, never a
//! panic. Tensors are f32 or f64; what is saved is their values (no gradient, no graph), and
//! what is loaded never requires grad.
//!
//! ```
//! use std::collections::BTreeMap;
//! use eingrad::{io, DType, Tensor};
//! let dir = std::env::temp_dir();
//! let w = Tensor::randn(&[4, 3], DType::F32, 0).unwrap();
//! io::save_safetensors(dir.join("eingrad_doc_io.safetensors"), &[("w", &w)], &BTreeMap::new())
//!     .unwrap();
//! io::save_npz(dir.join("eingrad_doc_io.npz"), &[("w", &w)]).unwrap();
//! let a = io::load_safetensors(dir.join("eingrad_doc_io.safetensors")).unwrap();
//! let b = io::load_npz(dir.join("eingrad_doc_io.npz")).unwrap();
//! assert_eq!(a.get("w").unwrap().to_vec::<f32>().unwrap(), b[0].1.to_vec::<f32>().unwrap());
//! ```

mod file;
mod npy;
mod npz;
mod safetensors;

pub use file::write_atomic;
pub use npy::{from_npy_bytes, load_npy, save_npy, to_npy_bytes};
pub use npz::{from_npz_bytes, load_npz, save_npz, to_npz_bytes};
pub use safetensors::{
    from_safetensors_bytes, load_safetensors, save_safetensors, to_safetensors_bytes,
    SafeTensorsFile,
};
