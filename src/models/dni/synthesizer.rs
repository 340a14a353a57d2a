//! The synthesizer trait and the seed's [`BasicSynthesizer`].

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::nn::{init, prefixed, Linear, Module};
use crate::tensor::Tensor;

/// Something that predicts a message from a trigger and an optional context.
pub trait Synthesizer {
    /// The synthesized message for `trigger` (the interfaces pass the top of the context stack
    /// as `context`).
    fn synthesize(&self, trigger: &Tensor, context: Option<&Tensor>) -> Result<Tensor>;
    /// The trainable parameters by dotted name (as `Module::named_parameters`).
    fn named_parameters(&self) -> Vec<(String, Tensor)>;
    /// The trainable parameters in `named_parameters` order.
    fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters()
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }
}

/// The sizes of a [`BasicSynthesizer`] (the seed's constructor arguments).
///
/// ```
/// use eingrad::models::dni::BasicSynthesizerConfig;
/// let c = BasicSynthesizerConfig::new(10).n_hidden(2).hidden_dim(32).context_dim(5);
/// assert_eq!((c.trigger_dim, c.hidden_dim, c.context_dim), (10, 32, Some(5)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasicSynthesizerConfig {
    /// Width of the synthesized message.
    pub output_dim: usize,
    /// Number of hidden layers (0: one linear map from trigger to message).
    pub n_hidden: usize,
    /// Width of the hidden layers.
    pub hidden_dim: usize,
    /// Width of the trigger.
    pub trigger_dim: usize,
    /// Width of the context; `None` for an unconditioned synthesizer.
    pub context_dim: Option<usize>,
}

impl BasicSynthesizerConfig {
    /// The seed's defaults: no hidden layer, `hidden_dim = trigger_dim = output_dim`, no
    /// context.
    pub fn new(output_dim: usize) -> BasicSynthesizerConfig {
        BasicSynthesizerConfig {
            output_dim,
            n_hidden: 0,
            hidden_dim: output_dim,
            trigger_dim: output_dim,
            context_dim: None,
        }
    }
    /// Sets `n_hidden`.
    pub fn n_hidden(mut self, n: usize) -> Self {
        self.n_hidden = n;
        self
    }
    /// Sets `hidden_dim`.
    pub fn hidden_dim(mut self, d: usize) -> Self {
        self.hidden_dim = d;
        self
    }
    /// Sets `trigger_dim`.
    pub fn trigger_dim(mut self, d: usize) -> Self {
        self.trigger_dim = d;
        self
    }
    /// Sets `context_dim`.
    pub fn context_dim(mut self, d: usize) -> Self {
        self.context_dim = Some(d);
        self
    }
}

/// The seed's synthesizer: `Linear(trigger → top)` [+ `Linear(context → top)`], then
/// `n_hidden` linears each applied to the ReLU of the previous, where `top` is `output_dim`
/// without hidden layers and `hidden_dim` with. The last layer's weight is zero at
/// initialisation (both input layers' weights when `n_hidden = 0`); biases keep PyTorch's
/// default init. So the first synthesized message is the last layer's bias (plus the context
/// layer's bias when `n_hidden = 0`), whatever the trigger.
///
/// ```
/// use eingrad::models::dni::{BasicSynthesizer, BasicSynthesizerConfig, Synthesizer};
/// use eingrad::{DType, Tensor};
/// let s = BasicSynthesizer::new(BasicSynthesizerConfig::new(3).n_hidden(1).hidden_dim(8),
///     DType::F64, 0).unwrap();
/// let m = s.synthesize(&Tensor::randn(&[2, 3], DType::F64, 1).unwrap(), None).unwrap();
/// let bias = s.layers().last().unwrap().bias().unwrap().to_vec::<f64>().unwrap();
/// assert_eq!(m.to_vec::<f64>().unwrap(), [bias.clone(), bias].concat());
/// ```
#[derive(Clone)]
pub struct BasicSynthesizer {
    config: BasicSynthesizerConfig,
    input_trigger: Linear,
    input_context: Option<Linear>,
    layers: Vec<Linear>,
}

/// A SplitMix64 finaliser: an independent seed for part `k` of something seeded with `seed`.
pub(super) fn mix_seed(seed: u64, k: u64) -> u64 {
    crate::tensor::SplitMix64::derive(seed, k, 0x5DEE_CE66_D1CE_4E5B)
}

impl BasicSynthesizer {
    /// Builds the layers of `config` in `dtype`, drawing the initial values from `seed`.
    pub fn new(config: BasicSynthesizerConfig, dtype: DType, seed: u64) -> Result<Self> {
        const OP: &str = "BasicSynthesizer::new";
        let c = config;
        for (name, v) in [
            ("output_dim", c.output_dim),
            ("hidden_dim", c.hidden_dim),
            ("trigger_dim", c.trigger_dim),
            ("context_dim", c.context_dim.unwrap_or(1)),
        ] {
            if v == 0 {
                return Err(Error::arg(OP, name, "must be at least 1"));
            }
        }
        let top = if c.n_hidden == 0 {
            c.output_dim
        } else {
            c.hidden_dim
        };
        let input_trigger = Linear::new(c.trigger_dim, top, true, dtype, mix_seed(seed, 0))?;
        let input_context = match c.context_dim {
            Some(d) => Some(Linear::new(d, top, true, dtype, mix_seed(seed, 1))?),
            None => None,
        };
        let layers = (0..c.n_hidden)
            .map(|k| {
                let out = if k + 1 < c.n_hidden {
                    c.hidden_dim
                } else {
                    c.output_dim
                };
                Linear::new(c.hidden_dim, out, true, dtype, mix_seed(seed, 2 + k as u64))
            })
            .collect::<Result<Vec<_>>>()?;
        match layers.last() {
            Some(last) => init::zeros_(last.weight())?,
            None => {
                init::zeros_(input_trigger.weight())?;
                if let Some(ctx) = &input_context {
                    init::zeros_(ctx.weight())?;
                }
            }
        }
        Ok(BasicSynthesizer {
            config,
            input_trigger,
            input_context,
            layers,
        })
    }

    /// The sizes it was built with.
    pub fn config(&self) -> &BasicSynthesizerConfig {
        &self.config
    }
    /// The trigger's input layer.
    pub fn input_trigger(&self) -> &Linear {
        &self.input_trigger
    }
    /// The context's input layer, if the synthesizer is conditioned.
    pub fn input_context(&self) -> Option<&Linear> {
        self.input_context.as_ref()
    }
    /// The hidden-to-hidden and hidden-to-output layers (`n_hidden` of them).
    pub fn layers(&self) -> &[Linear] {
        &self.layers
    }
}

impl Synthesizer for BasicSynthesizer {
    /// `trigger` has shape `(..., trigger_dim)`; `context`, needed exactly when `context_dim`
    /// is set (and ignored otherwise), has shape `(..., context_dim)` with the trigger's
    /// leading dims, or `(context_dim)` to condition the whole batch alike.
    fn synthesize(&self, trigger: &Tensor, context: Option<&Tensor>) -> Result<Tensor> {
        const OP: &str = "BasicSynthesizer::synthesize";
        let c = &self.config;
        if trigger.rank() == 0 || trigger.dims()[trigger.rank() - 1] != c.trigger_dim {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: trigger.dims().to_vec(),
                rhs: vec![c.trigger_dim],
                detail: format!(
                    " (`trigger` must have shape (..., trigger_dim = {}))",
                    c.trigger_dim
                ),
            });
        }
        let mut last = self.input_trigger.forward(trigger)?;
        if let (Some(layer), Some(cd)) = (&self.input_context, c.context_dim) {
            let Some(ctx) = context else {
                return Err(Error::arg(
                    OP,
                    "context",
                    format!(
                        "this synthesizer has context_dim = {cd} but no context was given \
                         (run it inside with_synthesizer_context)"
                    ),
                ));
            };
            let lead = &trigger.dims()[..trigger.rank() - 1];
            let fits = ctx.rank() >= 1
                && ctx.dims()[ctx.rank() - 1] == cd
                && (ctx.rank() == 1 || &ctx.dims()[..ctx.rank() - 1] == lead);
            if !fits {
                return Err(Error::ShapeMismatch {
                    op: OP,
                    lhs: trigger.dims().to_vec(),
                    rhs: ctx.dims().to_vec(),
                    detail: format!(
                        " (`context` must have shape {lead:?} + [context_dim = {cd}] like the \
                         trigger's leading dims, or [{cd}])"
                    ),
                });
            }
            last = last.add(&layer.forward(ctx)?)?;
        }
        for layer in &self.layers {
            last = layer.forward(&last.relu()?)?;
        }
        Ok(last)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = prefixed("input_trigger", self.input_trigger.named_parameters());
        if let Some(c) = &self.input_context {
            v.extend(prefixed("input_context", c.named_parameters()));
        }
        for (i, l) in self.layers.iter().enumerate() {
            v.extend(prefixed(&format!("layers.{i}"), l.named_parameters()));
        }
        v
    }
}

impl std::fmt::Debug for BasicSynthesizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BasicSynthesizer({:?})", self.config)
    }
}
