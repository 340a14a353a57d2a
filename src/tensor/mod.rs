//! [`Tensor`]: a cheap-clone handle to strided storage with an optional autograd node.

mod constructors;
mod display;

pub(crate) use constructors::SplitMix64;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLock};
use smallvec::SmallVec;

use crate::dtype::{DType, Float};
use crate::error::{Error, Result};
use crate::kernels::strided::{gather, try_gather};
use crate::layout::Layout;
use crate::storage::Storage;
use crate::with_dtype;

static NEXT_TENSOR_ID: AtomicU64 = AtomicU64::new(1);

/// A unique id per tensor handle created (views get their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub u64);

pub(crate) struct TensorInner {
    pub(crate) id: TensorId,
    pub(crate) storage: RwLock<Arc<Storage>>,
    pub(crate) layout: Layout,
    pub(crate) dtype: DType,
    /// The node that produced this tensor and which of its outputs it is.
    pub(crate) grad_fn: Option<GradFn>,
    /// Leaf flag set by `requires_grad_`.
    pub(crate) requires_grad: AtomicBool,
    /// Accumulated gradient (leaves, and non-leaves that `retain_grad`).
    pub(crate) grad: Mutex<Option<Tensor>>,
    pub(crate) retains_grad: AtomicBool,
    pub(crate) hooks: Mutex<Vec<(u64, Hook)>>,
}

/// An n-dimensional array of f32 or f64 that records the ops applied to it for autograd.
///
/// Cloning is cheap (an `Arc`); views share storage.
///
/// ```
/// use eingrad::Tensor;
/// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]).unwrap().requires_grad_(true);
/// let y = x.mul(&x).unwrap().sum_all().unwrap();
/// y.backward().unwrap();
/// assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![2.0, 4.0, 6.0]);
/// ```
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<TensorInner>);

impl Tensor {
    /// Builds a tensor from storage and layout with no autograd history.
    pub(crate) fn from_parts(storage: Arc<Storage>, layout: Layout) -> Tensor {
        let dtype = storage.dtype();
        Tensor(Arc::new(TensorInner {
            id: TensorId(NEXT_TENSOR_ID.fetch_add(1, Ordering::Relaxed)),
            storage: RwLock::new(storage),
            layout,
            dtype,
            grad_fn: None,
            requires_grad: AtomicBool::new(false),
            grad: Mutex::new(None),
            retains_grad: AtomicBool::new(false),
            hooks: Mutex::new(Vec::new()),
        }))
    }
    /// A fresh contiguous tensor owning `data`.
    pub(crate) fn from_storage(storage: Storage, shape: &[usize]) -> Tensor {
        Tensor::from_parts(Arc::new(storage), Layout::contiguous(shape))
    }
    /// A fresh contiguous tensor from a typed buffer.
    pub(crate) fn from_buf<T: Float>(data: Vec<T>, shape: &[usize]) -> Tensor {
        debug_assert_eq!(data.len(), shape.iter().product::<usize>());
        Tensor::from_storage(crate::storage::Storage::from_vec(data), shape)
    }
    /// A view of the same storage with another layout; records `grad_fn` separately.
    pub(crate) fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor::from_parts(self.storage(), layout)
    }

    /// This tensor's unique id.
    pub fn id(&self) -> TensorId {
        self.0.id
    }
    /// The shape (PyTorch's `size()`).
    ///
    /// ```
    /// assert_eq!(eingrad::Tensor::zeros(&[2, 5], eingrad::DType::F32).unwrap().dims(), &[2, 5]);
    /// ```
    pub fn dims(&self) -> &[usize] {
        self.0.layout.shape()
    }
    /// Same as [`Tensor::dims`].
    pub fn shape(&self) -> &[usize] {
        self.0.layout.shape()
    }
    /// Number of dims.
    pub fn rank(&self) -> usize {
        self.0.layout.rank()
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.layout.numel()
    }
    /// Element type.
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }
    /// The layout (shape, strides, offset).
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }
    /// Element strides.
    pub fn strides(&self) -> &[isize] {
        self.0.layout.strides()
    }
    /// The shared storage buffer.
    pub(crate) fn storage(&self) -> Arc<Storage> {
        self.0.storage.read().clone()
    }
    /// True when `self` and `other` share a storage buffer.
    pub fn shares_storage_with(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage(), &other.storage())
    }
    /// True when row-major and dense.
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }

    /// Copies the elements out in row-major order as `T` (which must match the dtype).
    ///
    /// ```
    /// let t = eingrad::Tensor::arange(0.0, 3.0, 1.0, eingrad::DType::F32).unwrap();
    /// assert_eq!(t.to_vec::<f32>().unwrap(), vec![0.0, 1.0, 2.0]);
    /// assert!(t.to_vec::<f64>().is_err());
    /// ```
    pub fn to_vec<T: Float>(&self) -> Result<Vec<T>> {
        let storage = self.storage();
        let src = storage
            .as_slice::<T>()
            .ok_or_else(|| Error::DTypeMismatch {
                op: "to_vec",
                lhs: self.dtype(),
                rhs: T::DTYPE,
            })?;
        let l = &self.0.layout;
        if l.is_contiguous() {
            let o = l.offset();
            return Ok(src[o..o + l.numel()].to_vec());
        }
        // A broadcast view's elements may not fit in memory: an error, not an abort.
        try_gather("to_vec", src, l.shape(), l.strides(), l.offset())
    }
    /// The elements as f64, whatever the dtype. Like `Vec::with_capacity`, aborts when they
    /// cannot be allocated (a huge broadcast view); [`Tensor::to_vec`] returns an error
    /// instead.
    pub fn to_vec_f64(&self) -> Vec<f64> {
        with_dtype!(self.dtype(), T => {
            let storage = self.storage();
            let src = storage.as_slice::<T>().expect("dtype dispatched");
            let l = &self.0.layout;
            let o = l.offset();
            if l.is_contiguous() {
                src[o..o + l.numel()].iter().map(|x| x.f64()).collect()
            } else {
                gather(src, l.shape(), l.strides(), o).into_iter().map(|x| x.f64()).collect()
            }
        })
    }
    /// The value of a one-element tensor.
    pub fn item(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(Error::arg(
                "item",
                "self",
                format!("needs exactly one element, shape is {:?}", self.dims()),
            ));
        }
        Ok(self.to_vec_f64()[0])
    }
    /// Replaces the elements in place (no autograd record; the update an optimizer does).
    /// Views and other handles that share the buffer through another tensor keep the old
    /// values (copy on write), but the same tensor saved by a recorded op sees the new ones:
    /// update parameters after backward, as optimizers do (no version counter checks this).
    /// `f` runs with this tensor's storage locked: it must not read or write this tensor
    /// (a view of it, or a tensor that shares its buffer) itself.
    pub fn update_data<T: Float>(&self, f: impl FnOnce(&mut [T])) -> Result<()> {
        if T::DTYPE != self.dtype() {
            return Err(Error::DTypeMismatch {
                op: "update_data",
                lhs: self.dtype(),
                rhs: T::DTYPE,
            });
        }
        if !self.is_contiguous() || self.0.layout.offset() != 0 {
            return Err(Error::arg(
                "update_data",
                "self",
                "must be a contiguous tensor that owns its storage",
            ));
        }
        let mut guard = self.0.storage.write();
        let storage = Arc::make_mut(&mut guard);
        let n = self.numel();
        let s = storage.as_mut_slice::<T>().expect("dtype checked");
        f(&mut s[..n]);
        Ok(())
    }
    /// Copies `src`'s values into `self` in place (shapes and dtypes must match).
    pub fn copy_from(&self, src: &Tensor) -> Result<()> {
        if src.dims() != self.dims() {
            return Err(Error::shapes("copy_from", self.dims(), src.dims()));
        }
        if src.dtype() != self.dtype() {
            return Err(Error::DTypeMismatch {
                op: "copy_from",
                lhs: self.dtype(),
                rhs: src.dtype(),
            });
        }
        with_dtype!(self.dtype(), T => {
            let v = src.to_vec::<T>()?;
            self.update_data::<T>(|d| d.copy_from_slice(&v))
        })
    }
}

// ---- The graph a tensor carries -------------------------------------------------------
// Tensor and Node refer to each other (a node holds its input tensors; a tensor its
// producing node), so both types live in this file; the rules and the engine that walk the
// graph live in the autograd floor above and reach the rule through `DerivativeRule`.

/// What the backward engine and forward mode ask of a node's derivative rule (implemented by
/// the autograd floor's `Rule`).
pub(crate) trait DerivativeRule: Send + Sync {
    /// Whether the VJP runs on a whole batch of cotangents at once.
    fn batches(&self) -> bool;
    /// The VJP: gradients for the `inputs` that `needs` marks, from the outputs' `grads` (each
    /// with a leading batch dim when `batched`).
    fn backward(
        &self,
        inputs: &[Tensor],
        grads: &[Tensor],
        needs: &[bool],
        batched: bool,
    ) -> Result<Vec<Option<Tensor>>>;
    /// The JVP: output tangents from input `tangents` (`None` = zero); `Ok(None)`: declined.
    fn jvp(
        &self,
        inputs: &[Tensor],
        tangents: &[Option<Tensor>],
        out_shapes: &[&[usize]],
    ) -> Result<Option<Vec<Option<Tensor>>>>;
}

/// A gradient hook: sees the gradient and may return a replacement.
pub type Hook = Arc<dyn Fn(&Tensor) -> Result<Option<Tensor>> + Send + Sync>;

pub(crate) struct OutputMeta {
    pub(crate) tensor: Weak<TensorInner>,
    pub(crate) shape: SmallVec<[usize; 4]>,
    pub(crate) dtype: DType,
}

/// One input of a node seen as a graph edge: where the input's gradient goes. Kept for the
/// node's whole life, while the input tensor itself is held only until a backward pass without
/// `retain_graph` frees the node (a leaf that required grad when it was recorded stays held:
/// its gradient accumulates into it).
pub(crate) struct Edge {
    /// The input's id.
    pub(crate) id: TensorId,
    /// The node that produced the input (`None`: a leaf).
    pub(crate) grad_fn: Option<GradFn>,
    /// The input's shape.
    pub(crate) shape: SmallVec<[usize; 4]>,
    /// The input's dtype.
    pub(crate) dtype: DType,
    /// A leaf that required grad when recorded.
    leaf: Option<Tensor>,
    /// The input, for as long as something else keeps it alive.
    weak: Weak<TensorInner>,
}

impl Edge {
    /// The edge to `t`.
    pub(crate) fn new(t: &Tensor) -> Edge {
        let is_param = t.0.grad_fn.is_none() && t.0.requires_grad.load(Ordering::Relaxed);
        Edge {
            id: t.id(),
            grad_fn: t.0.grad_fn.clone(),
            shape: SmallVec::from_slice(t.dims()),
            dtype: t.dtype(),
            leaf: is_param.then(|| t.clone()),
            weak: Arc::downgrade(&t.0),
        }
    }

    /// The input tensor, if it is still alive (a leaf that required grad always is).
    pub(crate) fn tensor(&self) -> Option<Tensor> {
        match &self.leaf {
            Some(t) => Some(t.clone()),
            None => self.weak.upgrade().map(Tensor),
        }
    }

    /// The input, or when it was freed a stand-in with its id, shape, dtype and history whose
    /// values are gone (NaN, one element broadcast to the shape).
    fn tensor_or_stand_in(&self) -> Tensor {
        if let Some(t) = self.tensor() {
            return t;
        }
        let storage = with_dtype!(self.dtype, T => Storage::from_vec(vec![T::nan()]));
        let strides = vec![0; self.shape.len()];
        Tensor(Arc::new(TensorInner {
            id: self.id,
            storage: RwLock::new(Arc::new(storage)),
            layout: Layout::new(self.shape.to_vec(), strides, 0),
            dtype: self.dtype,
            grad_fn: self.grad_fn.clone(),
            requires_grad: AtomicBool::new(false),
            grad: Mutex::new(None),
            retains_grad: AtomicBool::new(false),
            hooks: Mutex::new(Vec::new()),
        }))
    }
}

/// What a backward pass without `retain_graph` frees: the node's derivative rule (with the
/// tensors it saved) and the node's strong handles to its inputs. Shared out of the node's
/// lock and used outside it, so a rule that differentiates through its own node does not
/// deadlock.
#[derive(Clone)]
pub(crate) struct Saved {
    /// The op's derivative rule.
    pub(crate) rule: Arc<dyn DerivativeRule>,
    /// The input tensors (the rule sees their shapes and dtypes).
    pub(crate) inputs: SmallVec<[Tensor; 2]>,
}

/// One recorded op: its inputs (the graph's edges) and its derivative rule.
///
/// A backward pass without `retain_graph` frees the rule, the tensors it saved and the node's
/// handles to its inputs (PyTorch frees its saved tensors then): an activation that nothing
/// else holds is freed at backward even while the loss lives on. The edges stay, so a second
/// walk finds the node and reports that its graph was freed.
pub struct Node {
    pub(crate) id: u64,
    pub(crate) name: std::borrow::Cow<'static, str>,
    /// One per input, for the node's whole life (inline for up to two inputs: recording an
    /// op allocates as little as it can).
    pub(crate) edges: SmallVec<[Edge; 2]>,
    /// The rule and the inputs; `None` once a backward pass without `retain_graph` freed them.
    pub(crate) saved: Mutex<Option<Saved>>,
    pub(crate) outputs: Mutex<SmallVec<[OutputMeta; 1]>>,
}

impl Node {
    /// The op's name, e.g. `"einsum"` or `"exp"`.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The tensors this node's op consumed, in order.
    ///
    /// After a backward pass without `retain_graph` freed the node it no longer keeps its
    /// inputs alive: an input that nothing else holds then comes back as a stand-in with the
    /// input's id, shape, dtype and history ([`Tensor::grad_fn`], so the graph can still be
    /// walked) but no values (NaN). Leaves that require grad are always kept.
    ///
    /// ```
    /// use eingrad::{Tensor, DType};
    /// let x = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    /// let y = x.exp().unwrap().sum_all().unwrap();
    /// let node = &y.grad_fn().unwrap().node;
    /// assert_eq!(node.inputs()[0].grad_fn().unwrap().node.name(), "exp");
    /// y.backward().unwrap();
    /// // the exp output was freed at backward; its edge remains
    /// let e = &node.inputs()[0];
    /// assert_eq!(e.dims(), &[2]);
    /// assert_eq!(e.grad_fn().unwrap().node.inputs()[0].id(), x.id());
    /// ```
    pub fn inputs(&self) -> Vec<Tensor> {
        if let Some(saved) = self.saved() {
            return saved.inputs.to_vec();
        }
        self.edges.iter().map(Edge::tensor_or_stand_in).collect()
    }
    /// The rule and inputs, unless a backward pass freed them.
    pub(crate) fn saved(&self) -> Option<Saved> {
        self.saved.lock().clone()
    }
    /// Frees the rule, the tensors it saved and the handles to the inputs (backward without
    /// `retain_graph`); they are dropped after the lock is released.
    pub(crate) fn release(&self) {
        let saved = self.saved.lock().take();
        drop(saved);
    }
    /// Moves this node's rule, inputs and edges out, the producers onto `stack`.
    fn free_into(&mut self, stack: &mut Vec<Arc<Node>>) {
        // The rule and the inputs first: then the producers below are held only by the edges.
        drop(self.saved.get_mut().take());
        for e in std::mem::take(&mut self.edges) {
            if let Some(gf) = e.grad_fn {
                stack.push(gf.node);
            }
        }
    }
}

impl Drop for Node {
    /// Drops long chains iteratively: a 100,000-op graph must not overflow the stack.
    fn drop(&mut self) {
        let mut stack = Vec::new();
        self.free_into(&mut stack);
        while let Some(n) = stack.pop() {
            if let Ok(mut node) = Arc::try_unwrap(n) {
                node.free_into(&mut stack);
            }
        }
    }
}

/// Where a non-leaf tensor came from: a node and which of its outputs.
#[derive(Clone)]
pub struct GradFn {
    /// The producing node.
    pub node: Arc<Node>,
    /// Index among the node's outputs.
    pub output: usize,
}

/// Removes a hook when `remove` is called.
pub struct HookHandle {
    pub(crate) tensor: Weak<TensorInner>,
    pub(crate) id: u64,
}

impl HookHandle {
    /// Unregisters the hook.
    pub fn remove(self) {
        if let Some(t) = self.tensor.upgrade() {
            // The hook is dropped after the lock is released (what it captured may run code
            // of its own when dropped).
            let removed: Vec<(u64, Hook)> = {
                let mut hooks = t.hooks.lock();
                let (gone, kept) = std::mem::take(&mut *hooks)
                    .into_iter()
                    .partition(|(id, _)| *id == self.id);
                *hooks = kept;
                gone
            };
            drop(removed);
        }
    }
}

/// A handle that does not keep its tensor alive ([`Tensor::downgrade`]).
///
/// Capture one in a hook that needs its own tensor: a hook holding a [`Tensor`] of the tensor
/// it is registered on is a reference cycle (the tensor owns its hooks), which keeps the tensor
/// and the graph behind it alive until the hook is removed.
///
/// ```
/// use eingrad::{Tensor, DType};
/// let x = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
/// let me = x.downgrade();
/// x.register_hook(move |g| {
///     let x = me.upgrade().expect("alive while its hook runs");
///     Ok(Some(g.mul(&x)?))
/// });
/// let me = x.downgrade();
/// drop(x);
/// assert!(me.upgrade().is_none()); // the hook did not keep it alive
/// ```
#[derive(Clone)]
pub struct WeakTensor(Weak<TensorInner>);

impl WeakTensor {
    /// The tensor, if some [`Tensor`] handle still keeps it alive.
    pub fn upgrade(&self) -> Option<Tensor> {
        self.0.upgrade().map(Tensor)
    }
}

impl Tensor {
    /// A [`WeakTensor`] to this tensor, which does not keep it alive.
    ///
    /// ```
    /// let x = eingrad::Tensor::ones(&[1], eingrad::DType::F32).unwrap();
    /// assert_eq!(x.downgrade().upgrade().unwrap().id(), x.id());
    /// ```
    pub fn downgrade(&self) -> WeakTensor {
        WeakTensor(Arc::downgrade(&self.0))
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}
