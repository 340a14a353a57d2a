//! `eingrad eval CKPT [--text STRING]` and `eingrad sample CKPT --prompt STRING --tokens N`:
//! a checkpoint's loss on a text or on the shipped validation split, and text generated from
//! it. A checkpoint is a run directory (its `model.safetensors`) or a safetensors file with the
//! model's metadata, such as one PyTorch wrote from nanoGPT's GPT.

use std::path::{Path, PathBuf};

use crate::data::{derive_seed, shakespeare_path, CharCorpus, Rng};
use crate::train::checkpoint::load_model_file;
use crate::train::model::CharLm;
use crate::train::{bits, thread_pool};
use crate::CliError;

/// The seed of the Gumbel noise for evaluations (hourglass with learned boundaries).
const EVAL_NOISE_SEED: u64 = 0x5EED_E7A1;

/// Loads the model of checkpoint `path` (a run directory or a file).
pub fn load_model(path: &Path) -> Result<CharLm, CliError> {
    let (file, st, spec) = load_model_file(path).map_err(CliError::usage)?;
    let lm = spec
        .build(0)
        .map_err(|e| CliError::usage(format!("{}: cannot build its model: {e}", file.display())))?;
    lm.load(&st)
        .map_err(|e| CliError::usage(format!("{}: {e}", file.display())))?;
    Ok(lm)
}

/// The options of `eingrad eval`.
#[derive(Debug, Clone, Default)]
pub struct EvalArgs {
    /// The checkpoint.
    pub checkpoint: PathBuf,
    /// The text to score; `None`: the validation split of `data`.
    pub text: Option<String>,
    /// The corpus whose validation split is scored (default: the shipped one).
    pub data: Option<PathBuf>,
    /// Kernel threads.
    pub threads: Option<usize>,
}

/// Runs `eingrad eval`; returns what it prints.
pub fn eval_command(args: &EvalArgs) -> Result<String, CliError> {
    thread_pool(args.threads)?.install(|| {
        let lm = load_model(&args.checkpoint)?;
        let vocab = &lm.spec().vocab;
        let t = lm.spec().block_size;
        match &args.text {
            Some(text) => {
                let ids = vocab
                    .encode(text)
                    .map_err(|e| CliError::usage(format!("--text: {e}")))?;
                if ids.len() < 2 {
                    return Err(CliError::usage(
                        "--text needs at least 2 characters (inputs text[..n-1], targets text[1..])",
                    ));
                }
                let (loss, windows) = lm.text_loss(&ids, EVAL_NOISE_SEED)?;
                let mut out = format!("loss = {loss:.9}\n");
                if windows > 1 {
                    out += &format!(
                        "note: {} predictions are more than block_size {t}: scored in {windows} \
                         consecutive windows of at most {t}, each seeing only its own window\n",
                        ids.len() - 1
                    );
                }
                Ok(out)
            }
            None => {
                let path = args.data.clone().unwrap_or_else(shakespeare_path);
                let corpus = CharCorpus::load(&path).map_err(CliError::usage)?;
                let text: String = vocab_text(&corpus)?;
                let ids = vocab.encode(&text).map_err(|e| {
                    CliError::usage(format!(
                        "{}: the validation split does not fit the checkpoint's vocabulary: {e}",
                        path.display()
                    ))
                })?;
                let (loss, windows) = lm.text_loss(&ids, EVAL_NOISE_SEED)?;
                Ok(format!(
                    "loss = {loss:.9}\nvalidation split of {} (last 10%, {} characters): \
                     {loss:.4} nats ({:.4} bits/char) over {windows} windows of block_size {t}\n",
                    path.display(),
                    ids.len(),
                    bits(loss)
                ))
            }
        }
    })
}

/// The validation split of `corpus` as text.
fn vocab_text(corpus: &CharCorpus) -> Result<String, CliError> {
    corpus
        .vocab()
        .decode(corpus.val())
        .map_err(CliError::failure)
}

/// The options of `eingrad sample`.
#[derive(Debug, Clone)]
pub struct SampleArgs {
    /// The checkpoint.
    pub checkpoint: PathBuf,
    /// The text to continue.
    pub prompt: String,
    /// Characters to generate.
    pub tokens: usize,
    /// Softmax temperature (0: greedy).
    pub temperature: f64,
    /// Keep only the k most likely characters.
    pub top_k: Option<usize>,
    /// Seed of the draws.
    pub seed: u64,
    /// Kernel threads.
    pub threads: Option<usize>,
}

/// Runs `eingrad sample`; returns the prompt followed by the generated text.
pub fn sample_command(args: &SampleArgs) -> Result<String, CliError> {
    if !(args.temperature.is_finite() && args.temperature >= 0.0) {
        return Err(CliError::usage(format!(
            "--temperature {}: must be finite and ≥ 0",
            args.temperature
        )));
    }
    if args.top_k == Some(0) {
        return Err(CliError::usage("--top-k must be at least 1"));
    }
    thread_pool(args.threads)?.install(|| {
        let lm = load_model(&args.checkpoint)?;
        let vocab = &lm.spec().vocab;
        if args.prompt.is_empty() {
            return Err(CliError::usage(
                "--prompt needs at least one character (nanoGPT starts from \"\\n\")",
            ));
        }
        let mut ids = vocab
            .encode(&args.prompt)
            .map_err(|e| CliError::usage(format!("--prompt: {e}")))?;
        let mut rng = Rng::new(args.seed);
        let start = ids.len();
        for k in 0..args.tokens {
            let logits = lm.next_logits(&ids, derive_seed(args.seed, k as u64))?;
            ids.push(eingrad::models::sample_logits(
                &logits,
                args.temperature,
                args.top_k,
                rng.next_f64(),
            ));
        }
        let text = vocab.decode(&ids[start..]).map_err(CliError::failure)?;
        Ok(format!("{}{text}\n", args.prompt))
    })
}
