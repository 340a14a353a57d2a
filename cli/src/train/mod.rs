//! `eingrad train gpt|hourglass|dni-digits`: train a character language model on the shipped
//! corpus with nanoGPT's recipe (AdamW with decay on matrices only, warmup then cosine, clipping),
//! with evaluations, checkpoints that resume bit for bit, a progress bar and loss curves; or the
//! DNI experiment on the digits ([`digits`]).
//!
//! - [`model`]: the models' specs (checkpoint metadata) and the built models.
//! - [`checkpoint`]: the run directory (`model.safetensors`, `optimizer.safetensors`, `loss.png`).

pub mod checkpoint;
pub mod digits;
pub mod model;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use clap::ValueEnum;
use eingrad::optim::{
    clip_grad_norm, split_decay_by_rank, Adam, AdamConfig, LrSchedule, Optimizer, ParamGroup,
    WarmupCosine,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use self::checkpoint::{RunState, Settings};
use self::model::{Boundaries, CharLm, HourglassSpec, ModelKind, ModelSpec, Noise};
use crate::data::{derive_seed, shakespeare_path, CharCorpus, Rng};
use crate::CliError;

/// What `eingrad train` trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrainModel {
    /// nanoGPT's GPT on the shipped Shakespeare (nanoGPT's CPU recipe by default).
    Gpt,
    /// The hourglass transformer with dynamic pooling, same width and depth as gpt.
    Hourglass,
    /// Residual xLSTM mLSTM layers, same width as gpt and about its parameter count.
    Mlstm,
    /// An MLP on the digits by backprop, DNI and cDNI; reports test accuracies.
    DniDigits,
}

/// The options of `eingrad train` (every one optional: the model's defaults fill the rest, a
/// resumed run takes its settings from the checkpoint).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TrainArgs {
    /// Steps to train in all (default: 2000 for the language models, 3000 for dni-digits). With
    /// --resume, the new total.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Sequences (images for dni-digits) per batch (default 12; 64 for dni-digits).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Peak learning rate (default 1e-3).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning rate at the end of the cosine decay (default lr/10).
    #[arg(long)]
    pub min_lr: Option<f64>,
    /// Linear warmup steps (default 100, or a tenth of --lr-decay-steps when that is less).
    #[arg(long)]
    pub warmup_steps: Option<u64>,
    /// The step at which the cosine reaches --min-lr (default: --steps).
    #[arg(long)]
    pub lr_decay_steps: Option<u64>,
    /// AdamW weight decay, applied to parameters of rank ≥ 2 only (default 0.1).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Clip the gradients' global norm to this (default 1.0; 0 turns clipping off).
    #[arg(long)]
    pub grad_clip: Option<f64>,
    /// Seed of the initial weights, the batches and the noise (default 1337).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Threads for the kernels (default: one per core). Results do not depend on it beyond
    /// float rounding.
    #[arg(long)]
    pub threads: Option<usize>,
    /// The run directory to write (default: out-MODEL; with --resume, the resumed directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory, bit for bit as if it had not stopped.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Estimate the train and validation loss every K steps (default 250; 0: only at the end);
    /// the model is checkpointed at each estimate.
    #[arg(long, value_name = "K")]
    pub eval_every: Option<u64>,
    /// Batches per loss estimate (default 20).
    #[arg(long)]
    pub eval_iters: Option<usize>,
    /// Blocks (gpt: default 4; mlstm: default 7, about gpt's parameter count).
    #[arg(long)]
    pub n_layer: Option<usize>,
    /// Attention heads (default 4).
    #[arg(long)]
    pub n_head: Option<usize>,
    /// Width (default 128; the hidden width for dni-digits, default 256).
    #[arg(long)]
    pub n_embd: Option<usize>,
    /// Context length in characters (default 64).
    #[arg(long)]
    pub block_size: Option<usize>,
    /// Biases in Linear layers and LayerNorms (default false, as nanoGPT's CPU recipe).
    #[arg(long)]
    pub bias: Option<bool>,
    /// Hourglass blocks before pooling, over the shortened sequence and after upsampling
    /// (default 1,2,1).
    #[arg(long, value_name = "PRE,SHORT,POST")]
    pub hourglass_layers: Option<String>,
    /// Hourglass boundaries: gumbel (learned, default), fixed:K (every K characters) or
    /// whitespace.
    #[arg(long)]
    pub boundaries: Option<String>,
    /// The Gumbel boundaries' prior: the expected fraction of boundaries (default 0.2).
    #[arg(long)]
    pub prior: Option<f64>,
    /// dni-digits: the standard deviation of Gaussian noise added to the training pixels (in
    /// [0, 1]) as augmentation (default 0.3; 0 turns it off).
    #[arg(long)]
    pub input_noise: Option<f64>,
    /// The text corpus (default: the shipped data/shakespeare/input.txt; dni-digits: the
    /// shipped data/digits/digits.csv.gz).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

impl From<eingrad::Error> for CliError {
    fn from(e: eingrad::Error) -> CliError {
        CliError::failure(e.to_string())
    }
}

/// Runs `eingrad train`. `stop` is the Ctrl-C flag: when it is set, the run checkpoints at the
/// end of the current step and returns.
pub fn train_command(
    model: TrainModel,
    args: &TrainArgs,
    stop: &AtomicBool,
) -> Result<(), CliError> {
    let pool = thread_pool(args.threads)?;
    pool.install(|| match model {
        TrainModel::Gpt => train_lm(ModelKind::Gpt, args, stop),
        TrainModel::Hourglass => train_lm(ModelKind::Hourglass, args, stop),
        TrainModel::Mlstm => train_lm(ModelKind::Mlstm, args, stop),
        TrainModel::DniDigits => digits::train_digits(args, stop),
    })
}

/// A rayon pool of `threads` threads (default: rayon's, one per core).
pub fn thread_pool(threads: Option<usize>) -> Result<rayon::ThreadPool, CliError> {
    if threads == Some(0) {
        return Err(CliError::usage("--threads must be at least 1"));
    }
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        b = b.num_threads(n);
    }
    b.build()
        .map_err(|e| CliError::failure(format!("cannot start the thread pool: {e}")))
}

/// Creates `dir` and checks that a file can be written in it, before any training.
pub fn prepare_out_dir(dir: &Path) -> Result<(), CliError> {
    let bad = |e: String| CliError::usage(format!("--out {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(|e| bad(format!("cannot create the directory: {e}")))?;
    let probe = dir.join(".eingrad-write-test");
    eingrad::io::write_atomic(&probe, |w| Ok(w.write_all(b"ok")?))
        .map_err(|e| bad(format!("cannot write there: {e}")))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// The settings of the progress bar: hidden unless stderr is a terminal.
pub fn progress_bar(len: u64, pos: u64) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let pb = ProgressBar::with_draw_target(Some(len), target);
    if let Ok(style) = ProgressStyle::with_template("step {pos}/{len} [{bar:30}] {msg} ETA {eta} ")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_position(pos);
    pb
}

/// Resident memory in MiB (Linux), for the run's summary.
pub fn resident_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096.0 / (1024.0 * 1024.0))
}

/// The flag `name` given as `given` must agree with the checkpoint's `saved` on resume.
fn keep<T: PartialEq + std::fmt::Display>(
    name: &str,
    given: Option<T>,
    saved: T,
) -> Result<(), CliError> {
    match given {
        Some(g) if g != saved => Err(CliError::usage(format!(
            "--{name} {g} differs from the resumed run's {saved}: a resumed run keeps its \
             settings (start a new run with another --out to change them)"
        ))),
        _ => Ok(()),
    }
}

fn parse_layers(s: &str) -> Result<(usize, usize, usize), CliError> {
    let v: Vec<Option<usize>> = s.split(',').map(|x| x.trim().parse().ok()).collect();
    match v[..] {
        [Some(a), Some(b), Some(c)] => Ok((a, b, c)),
        _ => Err(CliError::usage(format!(
            "--hourglass-layers {s:?}: give three block counts PRE,SHORT,POST such as 1,2,1"
        ))),
    }
}

/// The spec of a new run from the flags and the model's defaults.
fn new_spec(kind: ModelKind, args: &TrainArgs, corpus: &CharCorpus) -> Result<ModelSpec, CliError> {
    let hourglass = match kind {
        ModelKind::Gpt | ModelKind::Mlstm => {
            for (flag, given) in [
                ("hourglass-layers", args.hourglass_layers.is_some()),
                ("boundaries", args.boundaries.is_some()),
                ("prior", args.prior.is_some()),
            ] {
                if given {
                    return Err(CliError::usage(format!(
                        "--{flag} is for hourglass, not {}",
                        kind.name()
                    )));
                }
            }
            None
        }
        ModelKind::Hourglass => {
            if args.n_layer.is_some() {
                return Err(CliError::usage(
                    "--n-layer is for gpt; give the hourglass's blocks as --hourglass-layers \
                     PRE,SHORT,POST",
                ));
            }
            let (pre, short, post) =
                parse_layers(args.hourglass_layers.as_deref().unwrap_or("1,2,1"))?;
            let boundaries = Boundaries::parse(args.boundaries.as_deref().unwrap_or("gumbel"))
                .map_err(|e| CliError::usage(format!("--boundaries: {e}")))?;
            let prior = args.prior.unwrap_or(0.2);
            if !(prior > 0.0 && prior < 1.0) {
                return Err(CliError::usage(format!(
                    "--prior {prior}: must lie in (0, 1)"
                )));
            }
            Some(HourglassSpec {
                pre_layers: pre,
                shortened_layers: short,
                post_layers: post,
                boundaries,
                prior,
                temperature: 0.5,
            })
        }
    };
    let n_layer = match &hourglass {
        Some(h) => h.pre_layers + h.shortened_layers + h.post_layers,
        // 7 mLSTM layers of width 128 (no feed-forward) hold about the parameters of 4 GPT
        // blocks.
        None if kind == ModelKind::Mlstm => args.n_layer.unwrap_or(7),
        None => args.n_layer.unwrap_or(4),
    };
    let spec = ModelSpec {
        kind,
        vocab: corpus.vocab().clone(),
        n_layer,
        n_head: args.n_head.unwrap_or(4),
        n_embd: args.n_embd.unwrap_or(128),
        block_size: args.block_size.unwrap_or(64),
        bias: args.bias.unwrap_or(false),
        hourglass,
        mlstm: (kind == ModelKind::Mlstm).then(Default::default),
    };
    for (flag, v) in [
        ("n-head", spec.n_head),
        ("n-embd", spec.n_embd),
        ("block-size", spec.block_size),
    ] {
        if v == 0 {
            return Err(CliError::usage(format!("--{flag} must be at least 1")));
        }
    }
    if !spec.n_embd.is_multiple_of(spec.n_head) {
        return Err(CliError::usage(format!(
            "--n-head {} must divide --n-embd {}",
            spec.n_head, spec.n_embd
        )));
    }
    Ok(spec)
}

/// The settings of a new run from the flags and nanoGPT's CPU recipe.
fn new_settings(args: &TrainArgs, corpus: &CharCorpus) -> Result<Settings, CliError> {
    let steps = args.steps.unwrap_or(2000);
    let lr = args.lr.unwrap_or(1e-3);
    let lr_decay_steps = args.lr_decay_steps.unwrap_or(steps);
    let s = Settings {
        steps,
        batch: args.batch.unwrap_or(12),
        lr,
        min_lr: args.min_lr.unwrap_or(lr / 10.0),
        warmup_steps: args
            .warmup_steps
            .unwrap_or_else(|| 100.min(lr_decay_steps / 10)),
        lr_decay_steps,
        weight_decay: args.weight_decay.unwrap_or(0.1),
        betas: (0.9, 0.99),
        grad_clip: args.grad_clip.unwrap_or(1.0),
        seed: args.seed.unwrap_or(1337),
        eval_every: args.eval_every.unwrap_or(250),
        eval_iters: args.eval_iters.unwrap_or(20),
        data_checksum: corpus.checksum(),
    };
    if s.steps == 0 || s.batch == 0 {
        return Err(CliError::usage("--steps and --batch must be at least 1"));
    }
    if !(s.weight_decay.is_finite() && s.weight_decay >= 0.0) {
        return Err(CliError::usage("--weight-decay must be finite and ≥ 0"));
    }
    if !(s.grad_clip.is_finite() && s.grad_clip >= 0.0) {
        return Err(CliError::usage("--grad-clip must be finite and ≥ 0"));
    }
    Ok(s)
}

/// Checks a resumed run's flags against its checkpoint: only --steps, --out, --threads,
/// --eval-every, --eval-iters and --data may be given anew.
fn check_resume_flags(args: &TrainArgs, spec: &ModelSpec, s: &Settings) -> Result<(), CliError> {
    keep("batch", args.batch, s.batch)?;
    keep("lr", args.lr, s.lr)?;
    keep("min-lr", args.min_lr, s.min_lr)?;
    keep("warmup-steps", args.warmup_steps, s.warmup_steps)?;
    keep("lr-decay-steps", args.lr_decay_steps, s.lr_decay_steps)?;
    keep("weight-decay", args.weight_decay, s.weight_decay)?;
    keep("grad-clip", args.grad_clip, s.grad_clip)?;
    keep("seed", args.seed, s.seed)?;
    keep("n-layer", args.n_layer, spec.n_layer)?;
    keep("n-head", args.n_head, spec.n_head)?;
    keep("n-embd", args.n_embd, spec.n_embd)?;
    keep("block-size", args.block_size, spec.block_size)?;
    keep("bias", args.bias, spec.bias)?;
    if let Some(h) = &spec.hourglass {
        keep(
            "hourglass-layers",
            args.hourglass_layers.clone(),
            format!("{},{},{}", h.pre_layers, h.shortened_layers, h.post_layers),
        )?;
        keep(
            "boundaries",
            args.boundaries.clone(),
            h.boundaries.to_string(),
        )?;
        keep("prior", args.prior, h.prior)?;
    }
    Ok(())
}

/// Estimates the mean cross-entropy on `iters` random batches of `data` (no gradients), with
/// batches and noise drawn from `seed` alone, so estimates never disturb training.
fn estimate(
    lm: &CharLm,
    corpus: &CharCorpus,
    data: &[usize],
    batch: usize,
    iters: usize,
    seed: u64,
) -> Result<(f64, Option<f64>), CliError> {
    let t = lm.spec().block_size;
    let mut rng = Rng::new(seed);
    let (mut sum, mut rate, mut has_rate) = (0.0, 0.0, false);
    eingrad::autograd::no_grad(|| -> Result<(), CliError> {
        for i in 0..iters {
            let (x, y) = corpus
                .batch(data, batch, t, &mut rng)
                .map_err(CliError::usage)?;
            let l = lm.loss(&x, &y, batch, t, Noise::Seed(derive_seed(seed, i as u64)))?;
            sum += l.cross_entropy;
            if let Some(r) = l.boundary_rate {
                rate += r;
                has_rate = true;
            }
        }
        Ok(())
    })?;
    let n = iters.max(1) as f64;
    Ok((sum / n, has_rate.then_some(rate / n)))
}

/// nats → bits.
pub fn bits(nats: f64) -> f64 {
    nats / std::f64::consts::LN_2
}

fn train_lm(kind: ModelKind, args: &TrainArgs, stop: &AtomicBool) -> Result<(), CliError> {
    let wall = Instant::now();
    if args.input_noise.is_some() {
        return Err(CliError::usage("--input-noise is for dni-digits"));
    }
    let data_path = args.data.clone().unwrap_or_else(shakespeare_path);
    let corpus = CharCorpus::load(&data_path).map_err(CliError::usage)?;

    // A new run, or the resumed one's spec, settings and state.
    let (spec, mut settings, resumed) = match &args.resume {
        None => (
            new_spec(kind, args, &corpus)?,
            new_settings(args, &corpus)?,
            None,
        ),
        Some(dir) => {
            let ck = checkpoint::load(dir, kind).map_err(CliError::usage)?;
            check_resume_flags(args, &ck.spec, &ck.settings)?;
            if ck.settings.data_checksum != corpus.checksum() {
                return Err(CliError::usage(format!(
                    "--resume {}: the run was trained on other data than {} (checksums differ); \
                     give the same --data",
                    dir.display(),
                    corpus.name()
                )));
            }
            (ck.spec.clone(), ck.settings.clone(), Some(ck))
        }
    };
    if let Some(s) = args.steps {
        if s == 0 {
            return Err(CliError::usage("--steps must be at least 1"));
        }
        settings.steps = s;
    }
    if let Some(k) = args.eval_every {
        settings.eval_every = k;
    }
    if let Some(n) = args.eval_iters {
        settings.eval_iters = n;
    }
    let schedule = WarmupCosine::new(
        settings.lr,
        settings.min_lr,
        settings.warmup_steps,
        settings.lr_decay_steps,
    )
    .map_err(|e| {
        CliError::usage(format!(
            "learning-rate schedule (--lr, --min-lr, --warmup-steps, --lr-decay-steps): {e}"
        ))
    })?;
    let (t, b) = (spec.block_size, settings.batch);
    if corpus.val().len() <= t {
        return Err(CliError::usage(format!(
            "{}: the validation split ({} characters) is too short for --block-size {t}",
            corpus.name(),
            corpus.val().len()
        )));
    }
    let out = args
        .out
        .clone()
        .or_else(|| args.resume.clone())
        .unwrap_or_else(|| PathBuf::from(format!("out-{}", kind.name())));
    prepare_out_dir(&out)?;

    // The model and the optimizer (nanoGPT's configure_optimizers).
    let lm = spec.build(settings.seed).map_err(CliError::usage)?;
    let params = lm.module().parameters();
    let (decay, no_decay) = split_decay_by_rank(&params);
    let mut opt = Adam::with_groups(
        vec![
            ParamGroup::new(decay).weight_decay(settings.weight_decay),
            ParamGroup::new(no_decay).weight_decay(0.0),
        ],
        AdamConfig {
            lr: settings.lr,
            betas: settings.betas,
            eps: 1e-8,
            weight_decay: settings.weight_decay,
            decoupled_weight_decay: true,
        },
    )?;
    let mut state = RunState {
        rng_state: Rng::new(derive_seed(settings.seed, 1)).state(),
        ..RunState::default()
    };
    if let Some(ck) = &resumed {
        lm.load(&ck.model)
            .map_err(|e| CliError::usage(format!("--resume: {e}")))?;
        opt.load_state_tensors(&ck.optimizer)
            .map_err(|e| CliError::usage(format!("--resume: optimizer state: {e}")))?;
        lm.set_noise_calls(ck.state.noise_calls);
        state = ck.state.clone();
        if state.step >= settings.steps {
            return Err(CliError::usage(format!(
                "--resume: the run is already at step {} of --steps {}; give a larger --steps \
                 to train on",
                state.step, settings.steps
            )));
        }
    }
    let mut rng = Rng::from_state(state.rng_state);
    let rss_start = resident_mib();
    let start = state.step;
    println!(
        "{} ({:.2}M parameters) on {} ({} train / {} val characters)",
        spec.describe(),
        lm.module().num_parameters() as f64 / 1e6,
        corpus.name(),
        corpus.train().len(),
        corpus.val().len()
    );
    println!(
        "training steps {start}..{} of batch {b} × {t} characters, AdamW lr {} → {} (warmup {}, \
         decay to step {}), weight decay {}, clip {}, seed {}, {} threads{}",
        settings.steps,
        settings.lr,
        settings.min_lr,
        settings.warmup_steps,
        settings.lr_decay_steps,
        settings.weight_decay,
        settings.grad_clip,
        settings.seed,
        rayon::current_num_threads(),
        if resumed.is_some() { ", resumed" } else { "" }
    );

    let save = |state: &RunState, opt: &Adam| -> Result<(), CliError> {
        checkpoint::save(
            &out,
            &spec,
            &lm.state_tensors(),
            &opt.state_tensors(),
            &settings,
            state,
        )
        .map_err(CliError::failure)
    };
    let pb = progress_bar(settings.steps, start);
    let tokens = (b * t) as f64;
    let (elapsed_base, step_base) = (state.elapsed_s, state.step_time_s);
    let mut session_step_s = 0.0;
    let evaluate = |step: u64, state: &mut RunState, session_step_s: f64| -> Result<(), CliError> {
        if settings.eval_iters == 0 || state.evals.last().is_some_and(|e| e.0 == step) {
            return Ok(());
        }
        let s = derive_seed(settings.seed, 1_000_000 + step);
        let (tr, _) = estimate(
            &lm,
            &corpus,
            corpus.train(),
            b,
            settings.eval_iters,
            derive_seed(s, 0),
        )?;
        let (va, rate) = estimate(
            &lm,
            &corpus,
            corpus.val(),
            b,
            settings.eval_iters,
            derive_seed(s, 1),
        )?;
        state.evals.push((step, tr, va));
        let speed = if session_step_s > 0.0 {
            format!(
                ", {:.0} tokens/s",
                (step - start) as f64 * tokens / session_step_s
            )
        } else {
            String::new()
        };
        let rate = rate.map_or(String::new(), |r| format!(", boundary rate {r:.3}"));
        let rss = resident_mib().map_or(String::new(), |m| format!(", RSS {m:.0} MiB"));
        pb.suspend(|| {
            println!(
                "step {step}: train loss {tr:.4}, val loss {va:.4} nats ({:.4} bits/char){rate}\
                 {speed}{rss}",
                bits(va)
            )
        });
        Ok(())
    };

    let mut interrupted = false;
    for step in start..settings.steps {
        if settings.eval_every > 0 && step % settings.eval_every == 0 {
            evaluate(step, &mut state, session_step_s)?;
            if step > start {
                state.elapsed_s = elapsed_base + wall.elapsed().as_secs_f64();
                state.step_time_s = step_base + session_step_s;
                save(&state, &opt)?;
            }
        }
        let t0 = Instant::now();
        opt.set_lr(schedule.lr_at(step))?;
        let (x, y) = corpus
            .batch(corpus.train(), b, t, &mut rng)
            .map_err(CliError::usage)?;
        let l = lm.loss(&x, &y, b, t, Noise::Stream)?;
        l.objective.backward()?;
        if settings.grad_clip > 0.0 {
            clip_grad_norm(opt.parameters(), settings.grad_clip)?;
        }
        opt.step()?;
        opt.zero_grad();
        let dt = t0.elapsed().as_secs_f64();
        session_step_s += dt;
        if !l.cross_entropy.is_finite() {
            return Err(CliError::failure(format!(
                "the training loss is {} at step {step}: lower --lr?",
                l.cross_entropy
            )));
        }
        state.train_loss.push(l.cross_entropy);
        state.step = step + 1;
        state.rng_state = rng.state();
        state.noise_calls = lm.noise_calls();
        pb.set_position(step + 1);
        pb.set_message(format!(
            "loss {:.4} | {:.0} tok/s",
            l.cross_entropy,
            (step + 1 - start) as f64 * tokens / session_step_s
        ));
        if stop.load(Ordering::SeqCst) && step + 1 < settings.steps {
            interrupted = true;
            break;
        }
    }
    if !interrupted {
        evaluate(settings.steps, &mut state, session_step_s)?;
    }
    pb.finish_and_clear();
    state.elapsed_s = elapsed_base + wall.elapsed().as_secs_f64();
    state.step_time_s = step_base + session_step_s;
    save(&state, &opt)?;
    let done = state.step - start;
    println!(
        "{} {done} steps in {:.1} s ({:.1} s in training steps, {:.0} tokens/s); \
         {:.1} s in all sessions",
        if interrupted {
            "interrupted after"
        } else {
            "trained"
        },
        wall.elapsed().as_secs_f64(),
        session_step_s,
        done as f64 * tokens / session_step_s.max(1e-9),
        state.elapsed_s
    );
    if let Some(&(s, _, v)) = state.evals.last() {
        println!(
            "val loss {v:.4} nats ({:.4} bits/char) at step {s}",
            bits(v)
        );
    }
    if let (Some(a), Some(z)) = (rss_start, resident_mib()) {
        println!("resident memory: {a:.0} MiB after setup, {z:.0} MiB at the end");
    }
    println!(
        "wrote {}, {} and {}",
        out.join(checkpoint::MODEL_FILE).display(),
        out.join(checkpoint::OPTIMIZER_FILE).display(),
        out.join(checkpoint::PLOT_FILE).display()
    );
    if interrupted {
        println!(
            "stopped by Ctrl-C at step {}: continue with `eingrad train {} --resume {}`",
            state.step,
            kind.name(),
            out.display()
        );
    }
    Ok(())
}
