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
    /// An autograd misuse: freed graph, missing grad_outputs, unused input, bad gradient shape
    /// (which one, and what is at fault, is the [`AutogradError`]).
    #[error("autograd: {0}")]
    Autograd(AutogradError),
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
    /// A file could not be opened, read, written, synced or renamed: the call, the path and
    /// the OS error (which is part of the message, not repeated as a `source`).
    ///
    /// ```
    /// let e = eingrad::io::load_npy("/no/such/dir/x.npy").unwrap_err();
    /// assert!(matches!(&e, eingrad::Error::File { op: "load_npy", .. }));
    /// assert!(e.to_string().starts_with("load_npy: /no/such/dir/x.npy: "), "{e}");
    /// ```
    #[error("{op}: {}: {error}", path.display())]
    File {
        /// The call (`load_npy`, `write_atomic`, ...).
        op: &'static str,
        /// The file (or the temporary file beside it).
        path: std::path::PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The bytes of a safetensors, npy or npz file (or buffer) are malformed, truncated, lie
    /// about their sizes or offsets, or hold an element type eingrad cannot read; `key` names
    /// the tensor or array at fault when there is one.
    ///
    /// ```
    /// let e = eingrad::io::from_npy_bytes(b"not an npy file").unwrap_err();
    /// assert!(matches!(&e, eingrad::Error::Format { op: "from_npy_bytes", key: None, .. }));
    /// assert!(e.to_string().starts_with("from_npy_bytes: <memory>: "), "{e}");
    /// ```
    #[error("{op}: {}{}: {msg}", path.display(), key_part(key))]
    Format {
        /// The call (`load_safetensors`, `load_npz`, ...).
        op: &'static str,
        /// The file, or `<memory>` for a byte buffer.
        path: std::path::PathBuf,
        /// The tensor (safetensors) or array (npz) at fault, if one is.
        key: Option<String>,
        /// What is wrong.
        msg: String,
    },
}

/// How a [`Error::Format`] names its key: `: "w"`, or nothing.
fn key_part(key: &Option<String>) -> String {
    match key {
        Some(k) => format!(": {k:?}"),
        None => String::new(),
    }
}

impl From<AutogradError> for Error {
    /// Wraps it (the message is the autograd error's, after `autograd: `; it is not repeated
    /// as a `source`).
    fn from(e: AutogradError) -> Self {
        Error::Autograd(e)
    }
}

/// What a batched pass met: a hook or `retain_grad` on an output of op `op`, or a hook on a
/// leaf (`None`).
fn hook_site(op: &Option<String>) -> String {
    match op {
        Some(op) => format!("a hook or retain_grad on an output of `{op}`"),
        None => "a hook on a leaf".to_string(),
    }
}

/// A tensor's shape and dtype, as an error reports them: `[2, 3] (F64)`.
///
/// ```
/// use eingrad::{error::TensorMeta, DType};
/// let m = TensorMeta { shape: vec![2, 3], dtype: DType::F64 };
/// assert_eq!(m.to_string(), "[2, 3] (F64)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorMeta {
    /// The shape.
    pub shape: Vec<usize>,
    /// The element type.
    pub dtype: DType,
}

impl TensorMeta {
    /// The shape and dtype of `shape`/`dtype`.
    pub(crate) fn new(shape: &[usize], dtype: DType) -> Self {
        TensorMeta {
            shape: shape.to_vec(),
            dtype,
        }
    }
}

impl std::fmt::Display for TensorMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} ({:?})", self.shape, self.dtype)
    }
}

/// What went wrong in a gradient computation. Each variant names the call or op (`op`), the
/// output or input at fault by index, and the shapes or dtypes that disagree; it comes wrapped
/// in [`Error::Autograd`].
///
/// ```
/// use eingrad::{Tensor, DType, Error, error::AutogradError, autograd::{grad, GradOptions}};
/// let x = Tensor::ones(&[2], DType::F64).unwrap(); // does not require grad
/// let e = grad(&[x.exp().unwrap()], &[x], None, GradOptions::default()).unwrap_err();
/// assert!(matches!(e, Error::Autograd(AutogradError::InputNotRequiringGrad { input: 0, .. })));
/// assert_eq!(e.to_string(), "autograd: grad: input 0 (shape [2]) does not require grad");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AutogradError {
    /// `grad`/`backward` was given an empty list of outputs.
    #[error("{op}: no outputs given")]
    NoOutputs {
        /// The call (`grad`, `backward`).
        op: &'static str,
    },
    /// The lists of outputs and of their gradients differ in length.
    #[error("{op}: {outputs} outputs but {grad_outputs} grad_outputs")]
    GradOutputCount {
        /// The call.
        op: &'static str,
        /// How many outputs.
        outputs: usize,
        /// How many output gradients.
        grad_outputs: usize,
    },
    /// An output to differentiate has no history and is not a leaf requiring grad.
    #[error("{op}: output {output} (shape {shape:?}) does not require grad and has no grad_fn")]
    OutputNotRequiringGrad {
        /// The call.
        op: &'static str,
        /// Its index among the outputs.
        output: usize,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// An input to differentiate with respect to does not require grad.
    #[error("{op}: input {input} (shape {shape:?}) does not require grad")]
    InputNotRequiringGrad {
        /// The call.
        op: &'static str,
        /// Its index among the inputs.
        input: usize,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// An output's given gradient has another shape than the output.
    #[error(
        "{op}: grad_outputs[{output}] has shape {got:?} but output {output} has shape {want:?}"
    )]
    GradOutputShape {
        /// The call.
        op: &'static str,
        /// The output's index.
        output: usize,
        /// The gradient's shape.
        got: Vec<usize>,
        /// The output's shape.
        want: Vec<usize>,
    },
    /// An output's given gradient has another dtype than the output.
    #[error("{op}: grad_outputs[{output}] is {got:?} but output {output} is {want:?}")]
    GradOutputDType {
        /// The call.
        op: &'static str,
        /// The output's index.
        output: usize,
        /// The gradient's dtype.
        got: DType,
        /// The output's dtype.
        want: DType,
    },
    /// No gradient was given for an output with more than one element (only a one-element
    /// output gets an implicit gradient of one).
    #[error(
        "{op}: output {output} has shape {shape:?}; a gradient can be implicitly created only \
         for an output with one element: pass grad_outputs (Tensor::backward_with)"
    )]
    ImplicitGradOutput {
        /// The call.
        op: &'static str,
        /// The output's index.
        output: usize,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// An input was not used to compute the outputs (and `allow_unused` is off).
    #[error(
        "{op}: input {input} (shape {shape:?}) was not used to compute the outputs; pass \
         allow_unused = true to get None for it"
    )]
    UnusedInput {
        /// The call.
        op: &'static str,
        /// The input's index.
        input: usize,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A batch of output gradients does not fit its output: it must be shaped
    /// `[batch] ++ output.shape` and the output must require grad.
    #[error(
        "{op}: output of shape {output:?} (requires grad: {requires_grad}) with batched \
         grad_output of shape {grad_output:?}, batch {batch}"
    )]
    BatchedGradOutput {
        /// The call.
        op: &'static str,
        /// The output's shape.
        output: Vec<usize>,
        /// Whether the output requires grad.
        requires_grad: bool,
        /// The batched gradient's shape.
        grad_output: Vec<usize>,
        /// The batch size.
        batch: usize,
    },
    /// A batched reverse pass (batched Jacobian rows) met a hook or `retain_grad`, which would
    /// see batched gradients; `op` is the node whose output has it, `None` for a leaf.
    #[error("a batched reverse pass met {}", hook_site(.op))]
    BatchedHook {
        /// The op whose output carries the hook, `None` for a leaf.
        op: Option<String>,
    },
    /// The graph through `op` was already walked without `retain_graph`: its saved tensors
    /// (and rule) are gone.
    #[error(
        "trying to backward through the graph a second time (op `{op}`): its saved tensors \
         were freed; pass retain_graph = true the first time"
    )]
    GraphFreed {
        /// The node met.
        op: String,
    },
    /// Backward passes started from inside one another (a hook or a custom backward calling
    /// `grad`) nested deeper than the limit: almost surely a hook that calls `grad` on its own
    /// tensor, which would re-enter forever.
    #[error(
        "reentrant backward nested {depth} deep: a hook or custom backward that calls grad or \
         backward re-enters without end (a hook calling grad on its own tensor?)"
    )]
    ReentrantDepth {
        /// The nesting limit that was reached.
        depth: usize,
    },
    /// Forward mode met a node whose graph an earlier backward freed.
    #[error("forward mode through `{op}`: its graph was freed by an earlier backward")]
    ForwardGraphFreed {
        /// The node met.
        op: String,
    },
    /// A backward rule returned another number of gradients than its op has inputs.
    #[error("backward of `{op}` returned {returned} gradients for {inputs} inputs")]
    GradientCount {
        /// The op.
        op: String,
        /// How many gradients it returned.
        returned: usize,
        /// How many inputs it has.
        inputs: usize,
    },
    /// A gradient (from a backward rule or a hook) does not fit the tensor it is for.
    #[error(
        "backward of `{op}`: {what} has shape {got} but the tensor it is for has shape {want}"
    )]
    GradientMismatch {
        /// The op whose rule or output hook produced it (`leaf` for a leaf's hook).
        op: String,
        /// `gradient` or `hook result`.
        what: &'static str,
        /// What came back.
        got: TensorMeta,
        /// What the tensor is (with a leading batch dim in batched passes).
        want: TensorMeta,
    },
    /// Forward mode met an op without a JVP rule whose backward rule detaches its output
    /// gradient, so it cannot be transposed into one.
    #[error(
        "forward mode through `{op}`: it has no JVP rule and its backward rule is not \
         differentiable in its output gradient (it detaches it), so it cannot be transposed"
    )]
    NotTransposable {
        /// The op.
        op: String,
    },
    /// `set_grad` was given a gradient that does not fit the tensor.
    #[error("set_grad: gradient of shape {got} for a tensor of shape {want}")]
    SetGradMismatch {
        /// The gradient given.
        got: TensorMeta,
        /// The tensor.
        want: TensorMeta,
    },
    /// A gradient that a computation needs did not arrive.
    #[error("{op}: no gradient reached {tensor}")]
    MissingGradient {
        /// The computation.
        op: &'static str,
        /// The tensor without one.
        tensor: &'static str,
    },
    /// A custom function ([`crate::autograd::CustomFunction`]) broke its contract.
    #[error("custom function `{function}`: {problem}")]
    Function {
        /// The function's name.
        function: String,
        /// What it did wrong.
        problem: FunctionProblem,
    },
}

/// How a [`crate::autograd::CustomFunction`] broke its contract (see [`AutogradError::Function`]).
///
/// ```
/// use eingrad::error::FunctionProblem;
/// let p = FunctionProblem::GradientCount { returned: 1, inputs: 2 };
/// assert_eq!(p.to_string(), "backward returned 1 gradients but the function has 2 inputs");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FunctionProblem {
    /// `forward` returned an empty list.
    #[error("forward returned no outputs")]
    NoOutputs,
    /// `mark_non_differentiable` named a tensor that `forward` did not return.
    #[error("mark_non_differentiable was given a tensor that forward did not return")]
    ForeignNonDifferentiable,
    /// `apply_function1` was used with a function of several outputs.
    #[error("apply_function1 needs exactly one output, forward returned {outputs}")]
    NotOneOutput {
        /// How many outputs `forward` returned.
        outputs: usize,
    },
    /// `backward` returned another number of gradients than the function has inputs.
    #[error("backward returned {returned} gradients but the function has {inputs} inputs")]
    GradientCount {
        /// How many it returned.
        returned: usize,
        /// How many inputs.
        inputs: usize,
    },
    /// `jvp` was given another number of tangents than the function has inputs.
    #[error("jvp was given {given} tangents but the function has {inputs} inputs")]
    TangentCount {
        /// How many it was given.
        given: usize,
        /// How many inputs.
        inputs: usize,
    },
    /// `jvp` returned another number of tangents than the function has outputs.
    #[error("jvp returned {returned} tangents but the function has {outputs} outputs")]
    JvpOutputCount {
        /// How many it returned.
        returned: usize,
        /// How many outputs.
        outputs: usize,
    },
    /// A gradient or tangent does not fit the input or output it is for.
    #[error("{value} of shape {got} for {} {index}, which has shape {want}", .value.role())]
    Mismatch {
        /// Which value.
        value: FunctionValue,
        /// The index of the input (or output) it is for.
        index: usize,
        /// What it is.
        got: TensorMeta,
        /// What the input (or output) is.
        want: TensorMeta,
    },
}

/// Which value of a custom function a [`FunctionProblem::Mismatch`] is about.
///
/// ```
/// use eingrad::error::FunctionValue;
/// assert_eq!(FunctionValue::JvpResult.to_string(), "jvp returned a tangent");
/// assert_eq!(FunctionValue::JvpResult.role(), "output");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FunctionValue {
    /// A gradient returned by `backward` (for an input).
    #[error("backward returned a gradient")]
    BackwardGradient,
    /// A tangent given to `jvp` (for an input).
    #[error("jvp was given a tangent")]
    JvpTangent,
    /// A tangent returned by `jvp` (for an output).
    #[error("jvp returned a tangent")]
    JvpResult,
}

impl FunctionValue {
    /// `"input"` or `"output"`: what the value belongs to.
    pub fn role(self) -> &'static str {
        match self {
            FunctionValue::BackwardGradient | FunctionValue::JvpTangent => "input",
            FunctionValue::JvpResult => "output",
        }
    }
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
