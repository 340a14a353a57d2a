//! The character language models the `train`, `eval` and `sample` commands share: their
//! specification ([`ModelSpec`], written to and read from a checkpoint's metadata) and the
//! built model ([`CharLm`]: losses, next-character logits, loading a state dict).

use std::collections::BTreeMap;

use eingrad::autograd::no_grad;
use eingrad::io::SafeTensorsFile;
use eingrad::models::gpt::{Gpt, GptConfig};
use eingrad::models::hourglass::{
    BoundaryInput, BoundaryMode, HourglassConfig, HourglassLm, HourglassLmConfig,
};
use eingrad::models::mlstm_lm::{MlstmLm, MlstmLmConfig};
use eingrad::nn::{Module, StateDict};
use eingrad::{DType, Tensor};

use crate::data::Vocab;

/// Which architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// nanoGPT's GPT ([`Gpt`]).
    Gpt,
    /// The hourglass transformer with dynamic pooling ([`HourglassLm`]).
    Hourglass,
    /// Residual xLSTM mLSTM layers ([`MlstmLm`]).
    Mlstm,
}

impl ModelKind {
    /// The name used on the command line and in a checkpoint's `model` metadata.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Gpt => "gpt",
            ModelKind::Hourglass => "hourglass",
            ModelKind::Mlstm => "mlstm",
        }
    }
    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<ModelKind> {
        match s {
            "gpt" => Some(ModelKind::Gpt),
            "hourglass" => Some(ModelKind::Hourglass),
            "mlstm" => Some(ModelKind::Mlstm),
            _ => None,
        }
    }
}

/// Where the hourglass puts segment boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundaries {
    /// Every `k` characters.
    Fixed(usize),
    /// After every space or newline.
    Whitespace,
    /// Learned: a Gumbel-sigmoid predictor with a binomial prior.
    Gumbel,
}

impl Boundaries {
    /// Parses `fixed:K`, `whitespace` or `gumbel`.
    ///
    /// ```
    /// use eingrad_cli::train::model::Boundaries;
    /// assert_eq!(Boundaries::parse("fixed:4"), Ok(Boundaries::Fixed(4)));
    /// assert_eq!(Boundaries::parse("gumbel").unwrap().to_string(), "gumbel");
    /// assert!(Boundaries::parse("fixed:0").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Boundaries, String> {
        match s {
            "whitespace" => Ok(Boundaries::Whitespace),
            "gumbel" => Ok(Boundaries::Gumbel),
            _ => match s.strip_prefix("fixed:").map(str::parse::<usize>) {
                Some(Ok(k)) if k >= 1 => Ok(Boundaries::Fixed(k)),
                _ => Err(format!(
                    "{s:?} is not a boundary mode: use fixed:K (K ≥ 1), whitespace or gumbel"
                )),
            },
        }
    }
}

impl std::fmt::Display for Boundaries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Boundaries::Fixed(k) => write!(f, "fixed:{k}"),
            Boundaries::Whitespace => f.write_str("whitespace"),
            Boundaries::Gumbel => f.write_str("gumbel"),
        }
    }
}

/// The hourglass's own sizes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HourglassSpec {
    /// Blocks before pooling.
    pub pre_layers: usize,
    /// Blocks over the shortened sequence.
    pub shortened_layers: usize,
    /// Blocks after upsampling.
    pub post_layers: usize,
    /// The boundaries.
    pub boundaries: Boundaries,
    /// The binomial prior (Gumbel): the expected fraction of boundaries.
    pub prior: f64,
    /// The Gumbel-sigmoid temperature.
    pub temperature: f64,
}

/// The mLSTM model's own sizes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MlstmSpec {
    /// The layers' up-projection factor.
    pub proj_factor: f64,
    /// The inner width is rounded up to a multiple of this.
    pub round_to: usize,
    /// The causal conv's kernel size.
    pub conv_kernel: usize,
    /// The head shares the token embedding's weight.
    pub tie_weights: bool,
}

impl Default for MlstmSpec {
    /// xLSTM's layer defaults (factor 2, multiples of 64, kernel 4) and a tied head.
    fn default() -> Self {
        MlstmSpec {
            proj_factor: 2.0,
            round_to: 64,
            conv_kernel: 4,
            tie_weights: true,
        }
    }
}

/// Everything needed to build a model: stored in a checkpoint's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// The architecture.
    pub kind: ModelKind,
    /// The character vocabulary.
    pub vocab: Vocab,
    /// Transformer blocks in all (for the hourglass: pre + shortened + post).
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Width.
    pub n_embd: usize,
    /// Longest context.
    pub block_size: usize,
    /// Biases in the Linear layers and LayerNorms.
    pub bias: bool,
    /// The hourglass's sizes (hourglass only).
    pub hourglass: Option<HourglassSpec>,
    /// The mLSTM model's sizes (mlstm only).
    pub mlstm: Option<MlstmSpec>,
}

/// A metadata value, parsed, with an error naming the key.
fn meta<T: std::str::FromStr>(m: &BTreeMap<String, String>, key: &str) -> Result<T, String> {
    let v = m
        .get(key)
        .ok_or_else(|| format!("metadata `{key}` is missing"))?;
    v.trim()
        .parse()
        .map_err(|_| format!("metadata `{key}` = {v:?} is not a valid value"))
}

fn meta_bool(m: &BTreeMap<String, String>, key: &str) -> Result<bool, String> {
    let v = m
        .get(key)
        .ok_or_else(|| format!("metadata `{key}` is missing"))?;
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("metadata `{key}` = {v:?} is not true or false")),
    }
}

impl ModelSpec {
    /// The metadata that describes this model (`model`, `n_layer`, `n_head`, `n_embd`,
    /// `block_size`, `vocab_size`, `bias`, `vocab`, and for the hourglass `pre_layers`,
    /// `shortened_layers`, `post_layers`, `boundaries`, `prior`, `temperature`).
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_string(), v);
        };
        put("model", self.kind.name().into());
        put("n_layer", self.n_layer.to_string());
        put("n_head", self.n_head.to_string());
        put("n_embd", self.n_embd.to_string());
        put("block_size", self.block_size.to_string());
        put("vocab_size", self.vocab.len().to_string());
        put("bias", self.bias.to_string());
        put("vocab", self.vocab.as_string());
        put("dropout", "0.0".into());
        if let Some(h) = &self.hourglass {
            put("pre_layers", h.pre_layers.to_string());
            put("shortened_layers", h.shortened_layers.to_string());
            put("post_layers", h.post_layers.to_string());
            put("boundaries", h.boundaries.to_string());
            put("prior", h.prior.to_string());
            put("temperature", h.temperature.to_string());
        }
        if let Some(x) = &self.mlstm {
            put("proj_factor", x.proj_factor.to_string());
            put("round_proj_up_to_multiple_of", x.round_to.to_string());
            put("conv_kernel", x.conv_kernel.to_string());
            put("tie_weights", x.tie_weights.to_string());
        }
        m
    }

    /// The spec a checkpoint's metadata describes. A file without `model` is taken to be
    /// nanoGPT's GPT (as PyTorch writes it). Errors name the key at fault.
    pub fn from_metadata(m: &BTreeMap<String, String>) -> Result<ModelSpec, String> {
        let kind = match m.get("model") {
            None => ModelKind::Gpt,
            Some(s) => ModelKind::parse(s).ok_or_else(|| {
                format!(
                    "metadata `model` = {s:?} is not a model this command knows (gpt, hourglass, mlstm)"
                )
            })?,
        };
        let vocab_str: String = m
            .get("vocab")
            .cloned()
            .ok_or("metadata `vocab` (the characters in id order) is missing")?;
        let vocab = Vocab::from_chars(&vocab_str).map_err(|e| format!("metadata `vocab`: {e}"))?;
        let vocab_size: usize = meta(m, "vocab_size")?;
        if vocab_size != vocab.len() {
            return Err(format!(
                "metadata `vocab_size` = {vocab_size} but `vocab` holds {} characters",
                vocab.len()
            ));
        }
        if let Some(d) = m.get("dropout") {
            if d.trim().parse::<f64>().ok() != Some(0.0) {
                // Dropout is off at evaluation anyway; training always runs without it.
                return Err(format!(
                    "metadata `dropout` = {d:?}: only dropout 0 is supported"
                ));
            }
        }
        let hourglass = match kind {
            ModelKind::Hourglass => Some(HourglassSpec {
                pre_layers: meta(m, "pre_layers")?,
                shortened_layers: meta(m, "shortened_layers")?,
                post_layers: meta(m, "post_layers")?,
                boundaries: Boundaries::parse(
                    m.get("boundaries")
                        .ok_or("metadata `boundaries` is missing")?,
                )
                .map_err(|e| format!("metadata `boundaries`: {e}"))?,
                prior: meta(m, "prior")?,
                temperature: meta(m, "temperature")?,
            }),
            _ => None,
        };
        let mlstm = match kind {
            ModelKind::Mlstm => Some(MlstmSpec {
                proj_factor: meta(m, "proj_factor")?,
                round_to: meta(m, "round_proj_up_to_multiple_of")?,
                conv_kernel: meta(m, "conv_kernel")?,
                tie_weights: meta_bool(m, "tie_weights")?,
            }),
            _ => None,
        };
        let spec = ModelSpec {
            kind,
            vocab,
            n_layer: meta(m, "n_layer")?,
            n_head: meta(m, "n_head")?,
            n_embd: meta(m, "n_embd")?,
            block_size: meta(m, "block_size")?,
            bias: meta_bool(m, "bias")?,
            hourglass,
            mlstm,
        };
        if let Some(h) = &spec.hourglass {
            let total = h.pre_layers + h.shortened_layers + h.post_layers;
            if total != spec.n_layer {
                return Err(format!(
                    "metadata `n_layer` = {} but pre + shortened + post layers = {total}",
                    spec.n_layer
                ));
            }
        }
        Ok(spec)
    }

    /// Builds the model with fresh weights drawn from `seed` (f32).
    pub fn build(&self, seed: u64) -> Result<CharLm, String> {
        let net = match self.kind {
            ModelKind::Gpt => {
                Net::Gpt(Gpt::new(self.gpt_config(), DType::F32, seed).map_err(|e| e.to_string())?)
            }
            ModelKind::Hourglass => {
                let h = self.hourglass.ok_or("hourglass sizes missing")?;
                let mut stack = HourglassConfig::new(
                    self.n_embd,
                    self.n_head,
                    match h.boundaries {
                        Boundaries::Fixed(k) => BoundaryMode::FixedEvery(k),
                        Boundaries::Whitespace => BoundaryMode::Whitespace,
                        Boundaries::Gumbel => BoundaryMode::Gumbel,
                    },
                );
                stack.pre_layers = h.pre_layers;
                stack.shortened_layers = h.shortened_layers;
                stack.post_layers = h.post_layers;
                stack.prior = h.prior;
                stack.temperature = h.temperature;
                stack.bias = self.bias;
                let mut cfg = HourglassLmConfig::new(self.vocab.len(), stack);
                cfg.block_size = Some(self.block_size);
                cfg.whitespace_ids = [' ', '\n', '\t', '\r']
                    .iter()
                    .filter_map(|&c| self.vocab.id(c))
                    .collect();
                if h.boundaries == Boundaries::Whitespace && cfg.whitespace_ids.is_empty() {
                    return Err(
                        "whitespace boundaries need a space or a newline in the vocabulary".into(),
                    );
                }
                Net::Hourglass(Box::new(
                    HourglassLm::new(&cfg, DType::F32, seed).map_err(|e| e.to_string())?,
                ))
            }
            ModelKind::Mlstm => {
                let x = self.mlstm.ok_or("mLSTM sizes missing")?;
                let mut cfg =
                    MlstmLmConfig::new(self.vocab.len(), self.n_embd, self.n_head, self.n_layer);
                cfg.layer.proj_factor = x.proj_factor;
                cfg.layer.round_proj_up_to_multiple_of = x.round_to;
                cfg.layer.conv_kernel = x.conv_kernel;
                cfg.tie_weights = x.tie_weights;
                cfg.bias = self.bias;
                Net::Mlstm(MlstmLm::new(&cfg, DType::F32, seed).map_err(|e| e.to_string())?)
            }
        };
        Ok(CharLm {
            spec: self.clone(),
            net,
        })
    }

    fn gpt_config(&self) -> GptConfig {
        GptConfig {
            block_size: self.block_size,
            vocab_size: self.vocab.len(),
            n_layer: self.n_layer,
            n_head: self.n_head,
            n_embd: self.n_embd,
            dropout: 0.0,
            bias: self.bias,
        }
    }

    /// One line describing the model.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{}: n_layer {}, n_head {}, n_embd {}, block_size {}, vocab {}, bias {}",
            self.kind.name(),
            self.n_layer,
            self.n_head,
            self.n_embd,
            self.block_size,
            self.vocab.len(),
            self.bias
        );
        if let Some(h) = &self.hourglass {
            s += &format!(
                ", layers {}/{}/{} (pre/shortened/post), boundaries {}",
                h.pre_layers, h.shortened_layers, h.post_layers, h.boundaries
            );
            if h.boundaries == Boundaries::Gumbel {
                s += &format!(" (prior {}, temperature {})", h.prior, h.temperature);
            }
        }
        if let Some(x) = &self.mlstm {
            s += &format!(
                ", proj_factor {}, conv kernel {}, {} head",
                x.proj_factor,
                x.conv_kernel,
                if x.tie_weights { "tied" } else { "untied" }
            );
        }
        s
    }
}

enum Net {
    Gpt(Gpt),
    Hourglass(Box<HourglassLm>),
    Mlstm(MlstmLm),
}

/// How the hourglass's Gumbel boundaries draw their noise.
#[derive(Debug, Clone, Copy)]
pub enum Noise {
    /// From the model's own stream (training; its position is checkpointed).
    Stream,
    /// From this seed (evaluation and sampling; the stream is left alone).
    Seed(u64),
}

/// The losses of one batch.
pub struct BatchLoss {
    /// What training minimises (cross-entropy, plus the boundary prior for Gumbel).
    pub objective: Tensor,
    /// The mean next-character cross-entropy in nats.
    pub cross_entropy: f64,
    /// The fraction of positions that are segment boundaries (hourglass).
    pub boundary_rate: Option<f64>,
}

/// A built character language model and its spec.
pub struct CharLm {
    spec: ModelSpec,
    net: Net,
}

impl CharLm {
    /// The spec it was built from.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The model as a [`Module`] (parameters, state dict).
    pub fn module(&self) -> &dyn Module {
        match &self.net {
            Net::Gpt(m) => m,
            Net::Hourglass(m) => m,
            Net::Mlstm(m) => m,
        }
    }

    /// The losses of ids `x` and next ids `y` (row-major `(b, t)`, `t ≤ block_size`).
    pub fn loss(
        &self,
        x: &[usize],
        y: &[usize],
        b: usize,
        t: usize,
        noise: Noise,
    ) -> eingrad::Result<BatchLoss> {
        match &self.net {
            Net::Gpt(m) => {
                let l = m.loss(x, y, b, t)?;
                Ok(BatchLoss {
                    cross_entropy: l.item()?,
                    objective: l,
                    boundary_rate: None,
                })
            }
            Net::Mlstm(m) => {
                let l = m.loss(x, y, b, t)?;
                Ok(BatchLoss {
                    cross_entropy: l.item()?,
                    objective: l,
                    boundary_rate: None,
                })
            }
            Net::Hourglass(m) => {
                let ids = ids_tensor(x, b, t)?;
                let input = match noise {
                    Noise::Seed(s) => BoundaryInput::GumbelSeed(s),
                    Noise::Stream => BoundaryInput::Auto,
                };
                let input = if self.is_gumbel() {
                    input
                } else {
                    BoundaryInput::Auto
                };
                let l = m.loss_with(&ids, y, input)?;
                Ok(BatchLoss {
                    cross_entropy: l.lm_loss.item()?,
                    objective: l.loss,
                    boundary_rate: Some(l.boundaries.mean_all()?.item()?),
                })
            }
        }
    }

    /// The mean cross-entropy (nats) of predicting `ids[1..]` from `ids[..n−1]`, scored in
    /// consecutive windows of at most `block_size` predictions, each seeing only its own window
    /// (the first window from the start of the text, as nanoGPT's windows); the mean is over all
    /// predictions. Returns the loss and the number of windows. Needs at least 2 ids. Gumbel
    /// noise (hourglass) comes from `noise_seed` (a text of one window draws exactly what
    /// [`CharLm::next_logits`] draws with the same seed).
    pub fn text_loss(&self, ids: &[usize], noise_seed: u64) -> eingrad::Result<(f64, usize)> {
        let n = ids.len().saturating_sub(1);
        if n == 0 {
            return Err(eingrad::Error::InvalidArgument {
                op: "eval",
                arg: "text",
                msg: "needs at least 2 characters (one prediction)".into(),
            });
        }
        let t = self.spec.block_size;
        let full = n / t;
        let mut total = 0.0;
        let mut windows = 0;
        no_grad(|| -> eingrad::Result<()> {
            // Full windows in batches of up to 32, then the remainder.
            let mut start = 0;
            while start < full {
                let nb = (full - start).min(32);
                let (mut x, mut y) = (Vec::new(), Vec::new());
                for w in start..start + nb {
                    x.extend_from_slice(&ids[w * t..(w + 1) * t]);
                    y.extend_from_slice(&ids[w * t + 1..(w + 1) * t + 1]);
                }
                let l = self.loss(&x, &y, nb, t, Noise::Seed(noise_seed ^ start as u64))?;
                total += l.cross_entropy * (nb * t) as f64;
                windows += nb;
                start += nb;
            }
            let rest = n - full * t;
            if rest > 0 {
                let s = full * t;
                let l = self.loss(
                    &ids[s..s + rest],
                    &ids[s + 1..s + rest + 1],
                    1,
                    rest,
                    Noise::Seed(noise_seed ^ full as u64),
                )?;
                total += l.cross_entropy * rest as f64;
                windows += 1;
            }
            Ok(())
        })?;
        Ok((total / n as f64, windows))
    }

    /// The next-character logits after `context` (cropped to its last `block_size` ids).
    pub fn next_logits(&self, context: &[usize], noise_seed: u64) -> eingrad::Result<Vec<f64>> {
        let start = context.len().saturating_sub(self.spec.block_size);
        let w = &context[start..];
        let t = w.len();
        let v = self.spec.vocab.len();
        let logits = no_grad(|| match &self.net {
            Net::Gpt(m) => m.logits(w, 1, t),
            Net::Mlstm(m) => m.logits(w, 1, t),
            Net::Hourglass(m) => {
                let input = if self.is_gumbel() {
                    BoundaryInput::GumbelSeed(noise_seed)
                } else {
                    BoundaryInput::Auto
                };
                Ok(m.forward_with(&ids_tensor(w, 1, t)?, input)?.logits)
            }
        })?;
        Ok(logits.to_vec_f64()[(t - 1) * v..].to_vec())
    }

    fn is_gumbel(&self) -> bool {
        matches!(
            self.spec.hourglass,
            Some(HourglassSpec {
                boundaries: Boundaries::Gumbel,
                ..
            })
        )
    }

    /// The position of the Gumbel noise stream (0 for models without one).
    pub fn noise_calls(&self) -> u64 {
        match &self.net {
            Net::Hourglass(m) => m.stack().noise_calls(),
            Net::Gpt(_) | Net::Mlstm(_) => 0,
        }
    }

    /// Sets the position of the Gumbel noise stream.
    pub fn set_noise_calls(&self, calls: u64) {
        if let Net::Hourglass(m) = &self.net {
            m.stack().set_noise_calls(calls);
        }
    }

    /// The tensors a checkpoint stores: the state dict (for the GPT nanoGPT's names, with
    /// `lm_head.weight` as a copy of the tied `transformer.wte.weight`).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.module().state_dict().into_vec()
    }

    /// Loads a checkpoint's tensors (strictly: every parameter present with its shape, nothing
    /// else). For the GPT, `lm_head.weight` may be absent (it is tied to
    /// `transformer.wte.weight`) and nanoGPT's `attn.bias` mask buffers are ignored.
    pub fn load(&self, file: &SafeTensorsFile) -> Result<(), String> {
        let mut sd: StateDict = file
            .tensors
            .iter()
            .filter(|(name, _)| !(self.spec.kind == ModelKind::Gpt && is_attn_mask(name)))
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        if self.spec.kind == ModelKind::Gpt {
            if let Some(wte) = sd.get("transformer.wte.weight").cloned() {
                match sd.get("lm_head.weight") {
                    None => sd.insert("lm_head.weight", wte),
                    Some(head) => {
                        if head.dims() == wte.dims() && head.to_vec_f64() != wte.to_vec_f64() {
                            return Err("`lm_head.weight` differs from `transformer.wte.weight`, \
                                 but the GPT ties them (nanoGPT's weight tying)"
                                .into());
                        }
                    }
                }
            }
        }
        self.module()
            .load_state_dict(&sd, true)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// nanoGPT's causal-mask buffer `transformer.h.{i}.attn.bias` (present when PyTorch has no
/// flash attention): not a parameter.
fn is_attn_mask(name: &str) -> bool {
    name.strip_prefix("transformer.h.")
        .and_then(|r| r.split_once('.'))
        .is_some_and(|(i, rest)| i.parse::<usize>().is_ok() && rest == "attn.bias")
}

/// Ids as a `(b, t)` f32 tensor of whole numbers (what the hourglass takes).
fn ids_tensor(ids: &[usize], b: usize, t: usize) -> eingrad::Result<Tensor> {
    Tensor::from_vec(ids.iter().map(|&i| i as f32).collect(), &[b, t])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: ModelKind) -> ModelSpec {
        ModelSpec {
            kind,
            vocab: Vocab::from_text("abc de\n"),
            n_layer: 2,
            n_head: 2,
            n_embd: 8,
            block_size: 8,
            bias: true,
            mlstm: (kind == ModelKind::Mlstm).then_some(MlstmSpec {
                round_to: 8,
                ..MlstmSpec::default()
            }),
            hourglass: (kind == ModelKind::Hourglass).then_some(HourglassSpec {
                pre_layers: 1,
                shortened_layers: 0,
                post_layers: 1,
                boundaries: Boundaries::Gumbel,
                prior: 0.2,
                temperature: 0.5,
            }),
        }
    }

    #[test]
    fn metadata_round_trips() {
        for k in [ModelKind::Gpt, ModelKind::Hourglass, ModelKind::Mlstm] {
            let s = spec(k);
            assert_eq!(ModelSpec::from_metadata(&s.metadata()).unwrap(), s);
        }
        let mut m = spec(ModelKind::Gpt).metadata();
        m.remove("n_head");
        assert!(ModelSpec::from_metadata(&m)
            .unwrap_err()
            .contains("`n_head`"));
        assert!(is_attn_mask("transformer.h.3.attn.bias"));
        assert!(!is_attn_mask("transformer.h.3.attn.c_attn.bias"));
    }

    #[test]
    fn windows_give_the_loss_of_each_window() {
        let m = spec(ModelKind::Gpt).build(0).unwrap();
        let ids: Vec<usize> = (0..20).map(|i| i % 7).collect();
        let (l, w) = m.text_loss(&ids, 0).unwrap();
        assert_eq!(w, 3); // 19 predictions: 8 + 8 + 3
        let part = |s: usize, n: usize| {
            m.loss(&ids[s..s + n], &ids[s + 1..s + n + 1], 1, n, Noise::Seed(0))
                .unwrap()
                .cross_entropy
        };
        let want = (part(0, 8) * 8.0 + part(8, 8) * 8.0 + part(16, 3) * 3.0) / 19.0;
        assert!((l - want).abs() < 1e-6, "{l} vs {want}");
    }
}
