//! The xLSTM mLSTM layer (`SEEDS.md` §1, after `NX-AI/xlstm`'s `blocks/mlstm/layer.py` and
//! `cell.py`): `(B, S, E)` → `(B, S, E)`, in its parallel form ([`Module::forward`]) and
//! step by step ([`MlstmLayer::step`], [`MlstmLayer::forward_recurrent`]).
//!
//! ```text
//! x, z   = split(proj_up(u))                          each (B, S, I), I = inner_dim
//! x_conv = SiLU(causal depthwise conv1d(x))           kernel conv_kernel, groups I
//! q, k   = q_proj(x_conv), k_proj(x_conv);  v = v_proj(x)      head-wise, blocks of 4
//! ĩ, f̃   = igate(q‖k‖v), fgate(q‖k‖v)                  Linear(3I → NH)
//! h      = outnorm(mLSTM(q, k, v, ĩ, f̃))               per head, DH = I / NH
//! y      = dropout(proj_down((h + learnable_skip ⊙ x_conv) ⊙ SiLU(z)))
//! ```
//!
//! Parameter names are xLSTM's, so its state dicts load by name (`bias = false` leaves out
//! the `*.bias` of `proj_up`, the projections and `proj_down`; `conv_bias = false` leaves
//! out `conv1d.conv.bias`; `conv_kernel = 0` leaves out the conv):
//!
//! | name | shape |
//! |---|---|
//! | `proj_up.weight` | `(2I, E)` |
//! | `q_proj.weight`, `k_proj.weight`, `v_proj.weight` | `(I / blocksize, blocksize, blocksize)` |
//! | `conv1d.conv.weight`, `conv1d.conv.bias` | `(I, 1, conv_kernel)`, `(I)` |
//! | `mlstm_cell.igate.weight`, `mlstm_cell.igate.bias` | `(NH, 3I)`, `(NH)` |
//! | `mlstm_cell.fgate.weight`, `mlstm_cell.fgate.bias` | `(NH, 3I)`, `(NH)` |
//! | `mlstm_cell.outnorm.weight` | `(I)`, the scale minus 1 |
//! | `learnable_skip` | `(I)` |
//! | `proj_down.weight` | `(E, I)` |

use super::components::{LinearHeadwise, MultiHeadLayerNorm};
use super::{decay_matrix, decay_matrix_custom, mlstm_parallel_from_decay, mlstm_step, MlstmState};
use crate::dtype::DType;
use crate::einsum::einsum;
use crate::error::{Error, Result};
use crate::nn::{as_parameter, derive_seed, init, prefixed, Conv1d, Dropout, Linear, Module};
use crate::ops::conv::{Conv1dOptions, Padding};
use crate::tensor::Tensor;

/// Which backward the decay matrix of the layer's cell uses.
///
/// ```
/// use eingrad::models::xlstm::{DecayBackward, MlstmLayerConfig};
/// let cfg = MlstmLayerConfig { decay_backward: DecayBackward::HandWritten, ..MlstmLayerConfig::new(8, 2) };
/// assert_eq!(MlstmLayerConfig::new(8, 2).decay_backward, DecayBackward::Autograd);
/// assert_ne!(cfg, MlstmLayerConfig::new(8, 2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecayBackward {
    /// [`decay_matrix`]: differentiable ops, autograd's derivative.
    #[default]
    Autograd,
    /// [`decay_matrix_custom`]: the seed's hand-written backward (a custom function).
    HandWritten,
}

/// The hyper-parameters of an [`MlstmLayer`] (xLSTM's `mLSTMLayerConfig`); [`new`] gives
/// xLSTM's defaults.
///
/// [`new`]: MlstmLayerConfig::new
///
/// ```
/// use eingrad::models::xlstm::MlstmLayerConfig;
/// let cfg = MlstmLayerConfig::new(16, 2);
/// assert_eq!(cfg.inner_dim(), 64); // 2·16 rounded up to a multiple of 64
/// assert_eq!(cfg.head_dim(), 32);
/// let small = MlstmLayerConfig { round_proj_up_to_multiple_of: 4, ..cfg };
/// assert_eq!(small.inner_dim(), 32);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MlstmLayerConfig {
    /// `E`, the size of the layer's input and output.
    pub embedding_dim: usize,
    /// `NH`, the number of mLSTM heads; must divide the inner dim.
    pub num_heads: usize,
    /// The up-projection factor (2.0): the inner dim is `proj_factor·E` rounded up.
    pub proj_factor: f64,
    /// The inner dim is rounded up to a multiple of this (64, as xLSTM).
    pub round_proj_up_to_multiple_of: usize,
    /// Kernel size of the causal depthwise conv (4); 0 leaves the conv out (`x_conv = x`).
    pub conv_kernel: usize,
    /// Whether the conv has a bias (true, xLSTM's `causal_conv_bias`).
    pub conv_bias: bool,
    /// Block size of the head-wise q, k, v projections (4); must divide the inner dim.
    pub qkv_proj_blocksize: usize,
    /// Whether `proj_up`, the q/k/v projections and `proj_down` have biases (false).
    pub bias: bool,
    /// Dropout probability after `proj_down` (0.0).
    pub dropout: f64,
    /// ε of the per-head layer norm (1e-5).
    pub norm_eps: f64,
    /// The number of blocks of the model the layer sits in (1): `proj_down` starts from
    /// N(0, (2 / num_blocks / √E)²), xLSTM's `wang_init_`.
    pub num_blocks: usize,
    /// Which backward the decay matrix uses (autograd's).
    pub decay_backward: DecayBackward,
}

impl MlstmLayerConfig {
    /// xLSTM's defaults for `embedding_dim` and `num_heads`: proj_factor 2, rounding to 64,
    /// conv kernel 4 with bias, q/k/v blocks of 4, no biases, no dropout, norm ε 1e-5, one
    /// block, autograd's decay backward.
    pub fn new(embedding_dim: usize, num_heads: usize) -> MlstmLayerConfig {
        MlstmLayerConfig {
            embedding_dim,
            num_heads,
            proj_factor: 2.0,
            round_proj_up_to_multiple_of: 64,
            conv_kernel: 4,
            conv_bias: true,
            qkv_proj_blocksize: 4,
            bias: false,
            dropout: 0.0,
            norm_eps: 1e-5,
            num_blocks: 1,
            decay_backward: DecayBackward::Autograd,
        }
    }

    /// `I = ⌈proj_factor·E / round⌉·round`, as xLSTM's `_set_proj_up_dim` (0 for a config
    /// that [`validate`](Self::validate) rejects).
    ///
    /// ```
    /// use eingrad::models::xlstm::MlstmLayerConfig;
    /// let cfg = MlstmLayerConfig { round_proj_up_to_multiple_of: 1, ..MlstmLayerConfig::new(5, 1) };
    /// assert_eq!(cfg.inner_dim(), 10);
    /// ```
    pub fn inner_dim(&self) -> usize {
        let m = self.round_proj_up_to_multiple_of;
        let up = self.proj_factor * self.embedding_dim as f64;
        if m == 0 || !up.is_finite() || up <= 0.0 {
            return 0;
        }
        ((up / m as f64).ceil() * m as f64) as usize
    }

    /// `DH = I / NH` (0 when `num_heads` is 0).
    ///
    /// ```
    /// assert_eq!(eingrad::models::xlstm::MlstmLayerConfig::new(32, 4).head_dim(), 16);
    /// ```
    pub fn head_dim(&self) -> usize {
        self.inner_dim().checked_div(self.num_heads).unwrap_or(0)
    }

    /// Checks the config; the error names the offending field.
    ///
    /// ```
    /// use eingrad::models::xlstm::MlstmLayerConfig;
    /// assert!(MlstmLayerConfig::new(16, 2).validate().is_ok());
    /// let e = MlstmLayerConfig::new(16, 3).validate().unwrap_err().to_string();
    /// assert!(e.contains("num_heads"), "{e}");
    /// ```
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "MlstmLayerConfig";
        let bad = |arg: &'static str, msg: String| Err(Error::arg(OP, arg, msg));
        if self.embedding_dim == 0 {
            return bad("embedding_dim", "must be at least 1, got 0".into());
        }
        if !(self.proj_factor.is_finite() && self.proj_factor > 0.0) {
            return bad(
                "proj_factor",
                format!("must be finite and > 0, got {}", self.proj_factor),
            );
        }
        if self.round_proj_up_to_multiple_of == 0 {
            return bad(
                "round_proj_up_to_multiple_of",
                "must be at least 1, got 0".into(),
            );
        }
        let inner = self.inner_dim();
        if self.num_heads == 0 || !inner.is_multiple_of(self.num_heads) {
            return bad(
                "num_heads",
                format!(
                    "must be ≥ 1 and divide the inner dim {inner}, got {}",
                    self.num_heads
                ),
            );
        }
        if self.qkv_proj_blocksize == 0 || !inner.is_multiple_of(self.qkv_proj_blocksize) {
            return bad(
                "qkv_proj_blocksize",
                format!(
                    "must be ≥ 1 and divide the inner dim {inner}, got {}",
                    self.qkv_proj_blocksize
                ),
            );
        }
        if !(0.0..=1.0).contains(&self.dropout) {
            return bad(
                "dropout",
                format!("must be a probability in [0, 1], got {}", self.dropout),
            );
        }
        if !(self.norm_eps.is_finite() && self.norm_eps >= 0.0) {
            return bad(
                "norm_eps",
                format!("must be finite and ≥ 0, got {}", self.norm_eps),
            );
        }
        if self.num_blocks == 0 {
            return bad("num_blocks", "must be at least 1, got 0".into());
        }
        Ok(())
    }

    /// The layer's parameter names and shapes, in [`Module::named_parameters`] order.
    ///
    /// ```
    /// use eingrad::models::xlstm::MlstmLayerConfig;
    /// let shapes = MlstmLayerConfig::new(16, 2).parameter_shapes();
    /// assert_eq!(shapes[0], ("proj_up.weight".to_string(), vec![128, 16]));
    /// assert_eq!(shapes.len(), 13);
    /// ```
    pub fn parameter_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (e, i, nh) = (self.embedding_dim, self.inner_dim(), self.num_heads);
        let bs = self.qkv_proj_blocksize.max(1);
        let mut v: Vec<(String, Vec<usize>)> = Vec::new();
        let mut push = |name: &str, shape: Vec<usize>| v.push((name.to_string(), shape));
        push("proj_up.weight", vec![2 * i, e]);
        if self.bias {
            push("proj_up.bias", vec![2 * i]);
        }
        for p in ["q_proj", "k_proj", "v_proj"] {
            push(&format!("{p}.weight"), vec![i / bs, bs, bs]);
            if self.bias {
                push(&format!("{p}.bias"), vec![i]);
            }
        }
        if self.conv_kernel > 0 {
            push("conv1d.conv.weight", vec![i, 1, self.conv_kernel]);
            if self.conv_bias {
                push("conv1d.conv.bias", vec![i]);
            }
        }
        for g in ["igate", "fgate"] {
            push(&format!("mlstm_cell.{g}.weight"), vec![nh, 3 * i]);
            push(&format!("mlstm_cell.{g}.bias"), vec![nh]);
        }
        push("mlstm_cell.outnorm.weight", vec![i]);
        push("learnable_skip", vec![i]);
        push("proj_down.weight", vec![e, i]);
        if self.bias {
            push("proj_down.bias", vec![e]);
        }
        v
    }
}

/// The recurrent state of an [`MlstmLayer`]: the conv's window and the cell's state.
///
/// ```
/// use eingrad::models::xlstm::{MlstmLayer, MlstmLayerConfig};
/// use eingrad::DType;
/// let layer = MlstmLayer::new(&MlstmLayerConfig::new(16, 2), DType::F32, 0).unwrap();
/// let st = layer.zero_state(3).unwrap();
/// assert_eq!(st.conv.dims(), &[3, 3, 64]);
/// assert_eq!(st.cell.c.dims(), &[3, 2, 32, 32]);
/// ```
#[derive(Debug, Clone)]
pub struct MlstmLayerState {
    /// The last `conv_kernel − 1` inputs of the conv (the `x` branch), oldest first:
    /// `(B, conv_kernel − 1, I)` (`(B, 0, I)` without a conv or with kernel 1).
    pub conv: Tensor,
    /// The mLSTM cell's `(C, n, m)`, `DH = DV = I / NH`.
    pub cell: MlstmState,
}

/// The xLSTM mLSTM layer; see the [module docs](self) for the computation and the parameter
/// names.
///
/// ```
/// use eingrad::models::xlstm::{MlstmLayer, MlstmLayerConfig};
/// use eingrad::nn::Module;
/// use eingrad::{DType, Tensor};
/// let layer = MlstmLayer::new(&MlstmLayerConfig::new(16, 2), DType::F32, 0).unwrap();
/// let x = Tensor::randn(&[2, 5, 16], DType::F32, 1).unwrap();
/// let y = layer.forward(&x).unwrap();
/// assert_eq!(y.dims(), &[2, 5, 16]);
/// assert!(layer.named_parameters().iter().any(|(n, _)| n == "mlstm_cell.fgate.bias"));
/// ```
#[derive(Clone)]
pub struct MlstmLayer {
    config: MlstmLayerConfig,
    proj_up: Linear,
    q_proj: LinearHeadwise,
    k_proj: LinearHeadwise,
    v_proj: LinearHeadwise,
    conv1d: Option<Conv1d>,
    igate: Linear,
    fgate: Linear,
    outnorm: MultiHeadLayerNorm,
    learnable_skip: Tensor,
    proj_down: Linear,
    dropout: Dropout,
}

fn conv_options(inner: usize) -> Conv1dOptions {
    Conv1dOptions::default()
        .padding(Padding::Causal)
        .groups(inner)
}

impl MlstmLayer {
    /// A layer with xLSTM's initialisation, drawn from `seed`: `proj_up` and the q/k/v
    /// projections from N(0, 2/(5E)) (`small_init`), `proj_down` from N(0, (2/num_blocks/√E)²)
    /// (`wang_init`), the conv as `torch.nn.Conv1d`, both gate weights 0, the forget-gate bias
    /// `linspace(3, 6, NH)`, the input-gate bias from N(0, 0.1²), the norm's scale 1, the skip
    /// 1, other biases 0.
    ///
    /// ```
    /// use eingrad::models::xlstm::{MlstmLayer, MlstmLayerConfig};
    /// use eingrad::DType;
    /// let layer = MlstmLayer::new(&MlstmLayerConfig::new(8, 4), DType::F64, 0).unwrap();
    /// assert_eq!(layer.fgate().bias().unwrap().to_vec::<f64>().unwrap(), vec![3.0, 4.0, 5.0, 6.0]);
    /// assert!(layer.igate().weight().to_vec::<f64>().unwrap().iter().all(|&w| w == 0.0));
    /// assert!(MlstmLayer::new(&MlstmLayerConfig::new(8, 3), DType::F64, 0).is_err());
    /// ```
    pub fn new(config: &MlstmLayerConfig, dtype: DType, seed: u64) -> Result<MlstmLayer> {
        config.validate()?;
        let c = *config;
        let (e, i, nh) = (c.embedding_dim, c.inner_dim(), c.num_heads);
        let small = (2.0 / (5.0 * e as f64)).sqrt();
        let zeros_if = |on: bool, n: usize| -> Result<Option<Tensor>> {
            if on {
                Ok(Some(init::zeros(&[n], dtype)?))
            } else {
                Ok(None)
            }
        };
        let proj_up = Linear::from_tensors(
            init::normal(&[2 * i, e], 0.0, small, dtype, derive_seed(seed, 0))?,
            zeros_if(c.bias, 2 * i)?,
        )?;
        let heads = i / c.qkv_proj_blocksize;
        let qkv = |k: u64| {
            LinearHeadwise::new(i, heads, c.bias, Some(small), dtype, derive_seed(seed, k))
        };
        let conv1d = if c.conv_kernel > 0 {
            Some(Conv1d::new(
                i,
                i,
                c.conv_kernel,
                conv_options(i),
                c.conv_bias,
                dtype,
                derive_seed(seed, 4),
            )?)
        } else {
            None
        };
        let igate = Linear::from_tensors(
            init::zeros(&[nh, 3 * i], dtype)?,
            Some(init::normal(&[nh], 0.0, 0.1, dtype, derive_seed(seed, 5))?),
        )?;
        let fgate = Linear::from_tensors(
            init::zeros(&[nh, 3 * i], dtype)?,
            Some(Tensor::linspace(3.0, 6.0, nh, dtype)?),
        )?;
        let wang = 2.0 / c.num_blocks as f64 / (e as f64).sqrt();
        let proj_down = Linear::from_tensors(
            init::normal(&[e, i], 0.0, wang, dtype, derive_seed(seed, 6))?,
            zeros_if(c.bias, e)?,
        )?;
        Ok(MlstmLayer {
            config: c,
            proj_up,
            q_proj: qkv(1)?,
            k_proj: qkv(2)?,
            v_proj: qkv(3)?,
            conv1d,
            igate,
            fgate,
            outnorm: MultiHeadLayerNorm::new(nh, i / nh, c.norm_eps, dtype)?,
            learnable_skip: init::ones(&[i], dtype)?,
            proj_down,
            dropout: Dropout::new(c.dropout, derive_seed(seed, 7))?,
        })
    }

    /// A layer from `tensors`, one per name of [`MlstmLayerConfig::parameter_shapes`] (in any
    /// order), all of one dtype. Leaves are marked `requires_grad`; a tensor with history is
    /// used as is, so the layer is differentiable with respect to whatever made its
    /// parameters (how the tests check gradients with respect to them). The dropout mask
    /// stream starts from seed 0. A missing, unexpected, repeated or mis-shaped name is an
    /// error naming it.
    ///
    /// ```
    /// use eingrad::models::xlstm::{MlstmLayer, MlstmLayerConfig};
    /// use eingrad::nn::Module;
    /// use eingrad::{DType, Tensor};
    /// let cfg = MlstmLayerConfig { round_proj_up_to_multiple_of: 4, ..MlstmLayerConfig::new(4, 2) };
    /// let a = MlstmLayer::new(&cfg, DType::F64, 0).unwrap();
    /// let b = MlstmLayer::from_tensors(&cfg, &a.named_parameters()).unwrap();
    /// let x = Tensor::randn(&[1, 3, 4], DType::F64, 1).unwrap();
    /// assert_eq!(a.forward(&x).unwrap().to_vec_f64(), b.forward(&x).unwrap().to_vec_f64());
    /// let e = MlstmLayer::from_tensors(&cfg, &a.named_parameters()[1..]).unwrap_err();
    /// assert!(e.to_string().contains("proj_up.weight"), "{e}");
    /// ```
    pub fn from_tensors(
        config: &MlstmLayerConfig,
        tensors: &[(String, Tensor)],
    ) -> Result<MlstmLayer> {
        const OP: &str = "MlstmLayer::from_tensors";
        config.validate()?;
        let c = *config;
        let shapes = c.parameter_shapes();
        for (k, (name, _)) in tensors.iter().enumerate() {
            if !shapes.iter().any(|(n, _)| n == name) {
                return Err(Error::arg(
                    OP,
                    "tensors",
                    format!("unexpected parameter `{name}` for this config"),
                ));
            }
            if tensors[..k].iter().any(|(n, _)| n == name) {
                return Err(Error::arg(
                    OP,
                    "tensors",
                    format!("parameter `{name}` given twice"),
                ));
            }
        }
        let dtype = tensors
            .first()
            .map(|(_, t)| t.dtype())
            .unwrap_or(DType::F32);
        let get = |name: &str| -> Result<Tensor> {
            let want = &shapes
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| Error::arg(OP, "tensors", format!("no parameter `{name}`")))?
                .1;
            let t = tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.clone())
                .ok_or_else(|| Error::arg(OP, "tensors", format!("missing parameter `{name}`")))?;
            if t.dims() != want.as_slice() {
                return Err(Error::arg(
                    OP,
                    "tensors",
                    format!("`{name}` must have shape {want:?}, got {:?}", t.dims()),
                ));
            }
            if t.dtype() != dtype {
                return Err(Error::arg(
                    OP,
                    "tensors",
                    format!(
                        "`{name}` has dtype {:?}, the first tensor {dtype:?}",
                        t.dtype()
                    ),
                ));
            }
            Ok(t)
        };
        let opt = |on: bool, name: &str| on.then(|| get(name)).transpose();
        let proj_up = Linear::from_tensors(get("proj_up.weight")?, opt(c.bias, "proj_up.bias")?)?;
        let hw = |w: &str, b: &str| LinearHeadwise::from_tensors(get(w)?, opt(c.bias, b)?);
        let conv1d = if c.conv_kernel > 0 {
            Some(Conv1d::from_tensors(
                get("conv1d.conv.weight")?,
                opt(c.conv_bias, "conv1d.conv.bias")?,
                conv_options(c.inner_dim()),
            )?)
        } else {
            None
        };
        Ok(MlstmLayer {
            config: c,
            proj_up,
            q_proj: hw("q_proj.weight", "q_proj.bias")?,
            k_proj: hw("k_proj.weight", "k_proj.bias")?,
            v_proj: hw("v_proj.weight", "v_proj.bias")?,
            conv1d,
            igate: Linear::from_tensors(
                get("mlstm_cell.igate.weight")?,
                Some(get("mlstm_cell.igate.bias")?),
            )?,
            fgate: Linear::from_tensors(
                get("mlstm_cell.fgate.weight")?,
                Some(get("mlstm_cell.fgate.bias")?),
            )?,
            outnorm: MultiHeadLayerNorm::from_tensors(
                get("mlstm_cell.outnorm.weight")?,
                c.num_heads,
                c.norm_eps,
            )?,
            learnable_skip: as_parameter(get("learnable_skip")?),
            proj_down: Linear::from_tensors(
                get("proj_down.weight")?,
                opt(c.bias, "proj_down.bias")?,
            )?,
            dropout: Dropout::new(c.dropout, 0)?,
        })
    }

    /// The config the layer was built with.
    pub fn config(&self) -> &MlstmLayerConfig {
        &self.config
    }
    /// The input-gate projection `Linear(3I → NH)`.
    pub fn igate(&self) -> &Linear {
        &self.igate
    }
    /// The forget-gate projection `Linear(3I → NH)`.
    pub fn fgate(&self) -> &Linear {
        &self.fgate
    }
    /// The per-channel skip scale, `(I)`.
    pub fn learnable_skip(&self) -> &Tensor {
        &self.learnable_skip
    }
    /// The dtype of the parameters.
    pub fn dtype(&self) -> DType {
        self.learnable_skip.dtype()
    }

    /// Sets which backward the decay matrix uses from now on.
    ///
    /// ```
    /// use eingrad::models::xlstm::{DecayBackward, MlstmLayer, MlstmLayerConfig};
    /// let mut layer = MlstmLayer::new(&MlstmLayerConfig::new(8, 2), eingrad::DType::F32, 0).unwrap();
    /// layer.set_decay_backward(DecayBackward::HandWritten);
    /// assert_eq!(layer.config().decay_backward, DecayBackward::HandWritten);
    /// ```
    pub fn set_decay_backward(&mut self, backward: DecayBackward) {
        self.config.decay_backward = backward;
    }

    /// The zero state for a batch of `batch` sequences (conv window 0, cell state 0).
    pub fn zero_state(&self, batch: usize) -> Result<MlstmLayerState> {
        let (i, nh, dh) = (
            self.config.inner_dim(),
            self.config.num_heads,
            self.config.head_dim(),
        );
        let window = self.config.conv_kernel.saturating_sub(1);
        Ok(MlstmLayerState {
            conv: Tensor::zeros(&[batch, window, i], self.dtype())?,
            cell: MlstmState::zeros(batch, nh, dh, dh, self.dtype())?,
        })
    }

    fn check_dtype(&self, op: &'static str, arg: &'static str, x: &Tensor) -> Result<()> {
        if x.dtype() != self.dtype() {
            return Err(Error::arg(
                op,
                arg,
                format!(
                    "dtype {:?} differs from the layer's {:?}",
                    x.dtype(),
                    self.dtype()
                ),
            ));
        }
        Ok(())
    }

    /// Checks `x` `(B, S, E)` with B, S ≥ 1.
    fn check_sequence(&self, op: &'static str, x: &Tensor) -> Result<(usize, usize)> {
        let e = self.config.embedding_dim;
        if x.rank() != 3 || x.dims()[2] != e || x.dims()[0] == 0 || x.dims()[1] == 0 {
            return Err(Error::arg(
                op,
                "x",
                format!(
                    "must have shape (B, S, {e}) with B, S ≥ 1, got {:?}",
                    x.dims()
                ),
            ));
        }
        self.check_dtype(op, "x", x)?;
        Ok((x.dims()[0], x.dims()[1]))
    }

    /// Gate pre-activations `(B, NH, S, 1)` from `q, k, v` `(B, S, I)`.
    fn gates(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let input = Tensor::cat(&[q, k, v], -1)?;
        let arrange = |g: Tensor| g.permute(&[0, 2, 1])?.unsqueeze(-1);
        Ok((
            arrange(self.igate.forward(&input)?)?,
            arrange(self.fgate.forward(&input)?)?,
        ))
    }

    /// `(B, S, I)` → `(B, NH, S, DH)`.
    fn heads(&self, t: &Tensor) -> Result<Tensor> {
        let (b, s) = (t.dims()[0], t.dims()[1]);
        let (nh, dh) = (self.config.num_heads, self.config.head_dim());
        t.reshape(&[b, s, nh, dh])?.permute(&[0, 2, 1, 3])
    }

    /// The output gate, skip and down-projection shared by both forms.
    fn output(&self, h: &Tensor, x_conv: &Tensor, z: &Tensor) -> Result<Tensor> {
        let h = h.add(&self.learnable_skip.mul(x_conv)?)?.mul(&z.silu()?)?;
        self.dropout.forward(&self.proj_down.forward(&h)?)
    }

    /// One position of the layer: `x_t` `(B, E)` and the state before it give `y_t` `(B, E)`
    /// and the state after it. Running it over a sequence from [`zero_state`] gives
    /// [`Module::forward`]'s outputs (to rounding, and up to the `1e-6` of the normaliser that
    /// the cell's two forms weigh differently; see [`mlstm_recurrent`](super::mlstm_recurrent)).
    ///
    /// [`zero_state`]: MlstmLayer::zero_state
    ///
    /// ```
    /// use eingrad::models::xlstm::{MlstmLayer, MlstmLayerConfig};
    /// use eingrad::nn::Module;
    /// use eingrad::{DType, Tensor};
    /// let cfg = MlstmLayerConfig { round_proj_up_to_multiple_of: 4, ..MlstmLayerConfig::new(4, 2) };
    /// let layer = MlstmLayer::new(&cfg, DType::F64, 0).unwrap();
    /// let x = Tensor::randn(&[2, 3, 4], DType::F64, 1).unwrap();
    /// let y = layer.forward(&x).unwrap().to_vec_f64();
    /// let mut state = layer.zero_state(2).unwrap();
    /// for t in 0..3 {
    ///     let x_t = x.narrow(1, t, 1).unwrap().reshape(&[2, 4]).unwrap();
    ///     let (y_t, next) = layer.step(&x_t, &state).unwrap();
    ///     let y_t = y_t.to_vec_f64();
    ///     for b in 0..2 {
    ///         for e in 0..4 {
    ///             assert!((y_t[b * 4 + e] - y[(b * 3 + t) * 4 + e]).abs() < 1e-7);
    ///         }
    ///     }
    ///     state = next;
    /// }
    /// ```
    pub fn step(&self, x_t: &Tensor, state: &MlstmLayerState) -> Result<(Tensor, MlstmLayerState)> {
        const OP: &str = "MlstmLayer::step";
        let c = &self.config;
        let (e, i, nh, dh) = (c.embedding_dim, c.inner_dim(), c.num_heads, c.head_dim());
        if x_t.rank() != 2 || x_t.dims()[1] != e || x_t.dims()[0] == 0 {
            return Err(Error::arg(
                OP,
                "x_t",
                format!("must have shape (B, {e}) with B ≥ 1, got {:?}", x_t.dims()),
            ));
        }
        self.check_dtype(OP, "x_t", x_t)?;
        let b = x_t.dims()[0];
        let window = c.conv_kernel.saturating_sub(1);
        if state.conv.dims() != [b, window, i] || state.conv.dtype() != self.dtype() {
            return Err(Error::arg(
                OP,
                "state",
                format!(
                    "state.conv must be a {:?} tensor of shape {:?}, got {:?} {:?}",
                    self.dtype(),
                    [b, window, i],
                    state.conv.dtype(),
                    state.conv.dims()
                ),
            ));
        }
        let up = self.proj_up.forward(x_t)?;
        let (x, z) = (up.narrow(-1, 0, i)?, up.narrow(-1, i, i)?);
        let (x_conv, conv) = match &self.conv1d {
            Some(conv1d) => {
                // The conv's input window, oldest first: (B, K, I).
                let newest = x.unsqueeze(1)?;
                let win = if window == 0 {
                    newest
                } else {
                    Tensor::cat(&[&state.conv, &newest], 1)?
                };
                let w = conv1d.weight().reshape(&[i, c.conv_kernel])?;
                let mut y = einsum("bki,ik->bi", &[&win, &w])?;
                if let Some(bias) = conv1d.bias() {
                    y = y.add(bias)?;
                }
                (y.silu()?, win.narrow(1, 1, window)?)
            }
            None => (x.clone(), state.conv.clone()),
        };
        let q = self.q_proj.forward(&x_conv)?;
        let k = self.k_proj.forward(&x_conv)?;
        let v = self.v_proj.forward(&x)?;
        let seq = |t: &Tensor| t.unsqueeze(1); // (B, 1, ·)
        let (ig, fg) = self.gates(&seq(&q)?, &seq(&k)?, &seq(&v)?)?;
        let cell_heads = |t: &Tensor| t.reshape(&[b, nh, 1, dh]);
        let (h, cell) = mlstm_step(
            &state.cell,
            &cell_heads(&q)?,
            &cell_heads(&k)?,
            &cell_heads(&v)?,
            &ig,
            &fg,
        )?;
        let h = self.outnorm.forward(&h)?.reshape(&[b, i])?;
        Ok((
            self.output(&h, &x_conv, &z)?,
            MlstmLayerState { conv, cell },
        ))
    }

    /// [`step`](Self::step) over every position of `x` `(B, S, E)` from `state` (the zero
    /// state when `None`); returns `y` `(B, S, E)` and the final state.
    ///
    /// ```
    /// use eingrad::models::xlstm::{MlstmLayer, MlstmLayerConfig};
    /// use eingrad::{DType, Tensor};
    /// let layer = MlstmLayer::new(&MlstmLayerConfig::new(8, 2), DType::F32, 0).unwrap();
    /// let x = Tensor::randn(&[1, 4, 8], DType::F32, 1).unwrap();
    /// let (y, state) = layer.forward_recurrent(&x, None).unwrap();
    /// assert_eq!(y.dims(), &[1, 4, 8]);
    /// assert_eq!(state.conv.dims(), &[1, 3, 64]);
    /// ```
    pub fn forward_recurrent(
        &self,
        x: &Tensor,
        state: Option<MlstmLayerState>,
    ) -> Result<(Tensor, MlstmLayerState)> {
        let (b, s) = self.check_sequence("MlstmLayer::forward_recurrent", x)?;
        let mut state = match state {
            Some(st) => st,
            None => self.zero_state(b)?,
        };
        let e = self.config.embedding_dim;
        let mut ys = Vec::with_capacity(s);
        for t in 0..s {
            let (y, next) = self.step(&x.narrow(1, t, 1)?.reshape(&[b, e])?, &state)?;
            ys.push(y);
            state = next;
        }
        let refs: Vec<&Tensor> = ys.iter().collect();
        Ok((Tensor::stack(&refs, 1)?, state))
    }
}

impl Module for MlstmLayer {
    /// The parallel form: `x` `(B, S, E)` to `(B, S, E)`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, s) = self.check_sequence("MlstmLayer::forward", x)?;
        let i = self.config.inner_dim();
        let up = self.proj_up.forward(x)?;
        let (xm, z) = (up.narrow(-1, 0, i)?, up.narrow(-1, i, i)?);
        let x_conv = match &self.conv1d {
            Some(conv) => conv
                .forward(&xm.transpose(1, 2)?)?
                .transpose(1, 2)?
                .silu()?,
            None => xm.clone(),
        };
        let q = self.q_proj.forward(&x_conv)?;
        let k = self.k_proj.forward(&x_conv)?;
        let v = self.v_proj.forward(&xm)?;
        let (ig, fg) = self.gates(&q, &k, &v)?;
        let dmat = match self.config.decay_backward {
            DecayBackward::Autograd => decay_matrix(&ig, &fg)?,
            DecayBackward::HandWritten => decay_matrix_custom(&ig, &fg)?,
        };
        let h =
            mlstm_parallel_from_decay(&self.heads(&q)?, &self.heads(&k)?, &self.heads(&v)?, &dmat)?;
        let h = self
            .outnorm
            .forward(&h)?
            .permute(&[0, 2, 1, 3])?
            .reshape(&[b, s, i])?;
        self.output(&h, &x_conv, &z)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = prefixed("proj_up", self.proj_up.named_parameters());
        v.extend(prefixed("q_proj", self.q_proj.named_parameters()));
        v.extend(prefixed("k_proj", self.k_proj.named_parameters()));
        v.extend(prefixed("v_proj", self.v_proj.named_parameters()));
        if let Some(conv) = &self.conv1d {
            v.extend(prefixed("conv1d.conv", conv.named_parameters()));
        }
        v.extend(prefixed("mlstm_cell.igate", self.igate.named_parameters()));
        v.extend(prefixed("mlstm_cell.fgate", self.fgate.named_parameters()));
        v.extend(prefixed(
            "mlstm_cell.outnorm",
            self.outnorm.named_parameters(),
        ));
        v.push(("learnable_skip".to_string(), self.learnable_skip.clone()));
        v.extend(prefixed("proj_down", self.proj_down.named_parameters()));
        v
    }

    fn train(&mut self, on: bool) {
        self.dropout.train(on);
    }

    fn is_training(&self) -> bool {
        self.dropout.is_training()
    }
}

impl std::fmt::Debug for MlstmLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MlstmLayer({:?})", self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_shapes_match_named_parameters() {
        for (bias, conv_kernel, conv_bias) in [(false, 4, true), (true, 3, false), (true, 0, true)]
        {
            let cfg = MlstmLayerConfig {
                bias,
                conv_kernel,
                conv_bias,
                round_proj_up_to_multiple_of: 4,
                ..MlstmLayerConfig::new(4, 2)
            };
            let layer = MlstmLayer::new(&cfg, DType::F64, 0).unwrap();
            let got: Vec<(String, Vec<usize>)> = layer
                .named_parameters()
                .into_iter()
                .map(|(n, t)| (n, t.dims().to_vec()))
                .collect();
            assert_eq!(got, cfg.parameter_shapes());
        }
    }

    #[test]
    fn initialisation_follows_xlstm() {
        let cfg = MlstmLayerConfig::new(16, 4);
        let layer = MlstmLayer::new(&cfg, DType::F64, 3).unwrap();
        let sd: std::collections::HashMap<String, Vec<f64>> = layer
            .named_parameters()
            .into_iter()
            .map(|(n, t)| (n, t.to_vec_f64()))
            .collect();
        assert_eq!(sd["mlstm_cell.fgate.bias"], vec![3.0, 4.0, 5.0, 6.0]);
        assert!(sd["mlstm_cell.fgate.weight"].iter().all(|&w| w == 0.0));
        assert!(sd["mlstm_cell.igate.weight"].iter().all(|&w| w == 0.0));
        assert!(sd["mlstm_cell.outnorm.weight"].iter().all(|&w| w == 0.0));
        assert!(sd["learnable_skip"].iter().all(|&w| w == 1.0));
        let std = |v: &[f64]| (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt();
        let small = (2.0 / 80.0f64).sqrt();
        assert!((std(&sd["proj_up.weight"]) / small - 1.0).abs() < 0.1);
        assert!((std(&sd["proj_down.weight"]) / 0.5 - 1.0).abs() < 0.1);
        assert!(std(&sd["mlstm_cell.igate.bias"]) < 0.3);
    }
}
