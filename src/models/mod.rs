//! Models rebuilt from the seed experiments (`SEEDS.md`), written in eingrad's tensor ops so
//! that every derivative, of any order, comes from the library's own rules.
//!
//! - [`gpt`]: a nanoGPT-compatible GPT (same names, init and state dict).
//! - [`hourglass`]: the hourglass transformer stack of dynamic pooling (pre, shortened and post
//!   layers; fixed, whitespace and Gumbel-predictor boundaries) and its language model.
//! - [`mlstm_lm`]: a language model of pre-LN residual mLSTM layers ([`xlstm::MlstmLayer`]).
//! - [`pooling`]: dynamic token pooling (Nawrot et al.'s hourglass with learned boundaries):
//!   segment-mean downsampling, causal upsampling, a boundary predictor with Gumbel-sigmoid
//!   and straight-through hard boundaries, and the binomial boundary prior.
//! - [`xlstm`]: the vLSTM/mLSTM log-space decay matrix (autograd and hand-written backward),
//!   the mLSTM cell in its parallel and recurrent forms, and the xLSTM mLSTM layer
//!   ([`xlstm::MlstmLayer`]) with its step form.

pub mod dni;
pub mod gpt;
pub mod hourglass;
pub mod mlstm_lm;
pub mod pooling;
mod sampling;
pub mod xlstm;

pub use sampling::sample_logits;
