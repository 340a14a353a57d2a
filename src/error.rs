//! The one error type of eingrad.
//!
//! Every fallible public function returns [`Result<T>`]; each variant names the op and the
//! pattern, shape, dim or dtype at fault so that a message alone tells what went wrong.

use crate::dtype::DType;

/// Everything that can go wrong in eingrad.
///
/// ```
/// use eingrad::{Tensor, Error};
/// let a = Tensor::zeros(&[2, 3], eingrad::DType::F32).unwrap();
/// let b = Tensor::zeros(&[4], eingrad::DType::F32).unwrap();
/// let err = a.add(&b).unwrap_err();
/// assert!(err.to_string().contains("add"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two shapes that must agree (or broadcast) do not.
    #[error("{op}: shapes {lhs:?} and {rhs:?} are incompatible{detail}")]
    ShapeMismatch {
        op: &'static str,
        lhs: Vec<usize>,
        rhs: Vec<usize>,
        detail: String,
    },
    /// A dimension index is out of range for a tensor of the given rank.
    #[error("{op}: dim {dim} is out of range for a tensor of rank {rank}")]
    DimOutOfRange {
        op: &'static str,
        dim: isize,
        rank: usize,
    },
    /// Two tensors that must share a dtype do not.
    #[error("{op}: dtype mismatch, {lhs:?} vs {rhs:?}")]
    DTypeMismatch {
        op: &'static str,
        lhs: DType,
        rhs: DType,
    },
    /// An einsum pattern could not be parsed; `caret` shows the pattern with a caret under the
    /// character at fault.
    #[error("einsum: {msg}\n  {pattern}\n  {caret}")]
    EinsumParse {
        pattern: String,
        caret: String,
        msg: String,
    },
    /// An einsum pattern is well formed but does not fit the operands.
    #[error("einsum \"{pattern}\": {msg}")]
    Einsum { pattern: String, msg: String },
    /// An argument has a value the op cannot accept.
    #[error("{op}: invalid argument `{arg}`: {msg}")]
    InvalidArgument {
        op: &'static str,
        arg: &'static str,
        msg: String,
    },
    /// An autograd misuse: freed graph, missing grad_outputs, unused input, bad gradient shape.
    #[error("autograd: {0}")]
    Autograd(String),
    /// Anomaly mode found a NaN or an infinity produced by a backward rule.
    #[error("anomaly: backward of `{op}` produced {what} (input shapes {shapes:?})")]
    Anomaly {
        op: String,
        what: String,
        shapes: Vec<Vec<usize>>,
    },
    /// Input/output failure (files, images).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// eingrad's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A shape mismatch without extra detail.
    pub(crate) fn shapes(op: &'static str, lhs: &[usize], rhs: &[usize]) -> Self {
        Error::ShapeMismatch {
            op,
            lhs: lhs.to_vec(),
            rhs: rhs.to_vec(),
            detail: String::new(),
        }
    }
    /// An invalid argument.
    pub(crate) fn arg(op: &'static str, arg: &'static str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op,
            arg,
            msg: msg.into(),
        }
    }
}
