//! A training run's directory: `model.safetensors` (the weights under the model's own names,
//! the [`ModelSpec`] and the step in the metadata), `optimizer.safetensors` (the optimizer's
//! state tensors under `optim.`, the loss history under `history.`, and in the metadata the
//! run's settings, step, data-RNG position, Gumbel-noise position and times) and `loss.png`.
//! Every file is written atomically (temporary file, fsync, rename): a run killed while
//! writing leaves the previous file whole. The optimizer file is written first and both carry
//! the step, so a run killed between the two writes is detected on `--resume`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use eingrad::io::{load_safetensors, save_safetensors, SafeTensorsFile};
use eingrad::{DType, Tensor};

use super::model::{ModelKind, ModelSpec};
use crate::plot::{line_plot_xy_png, PlotOptions};

/// The model file in a run directory.
pub const MODEL_FILE: &str = "model.safetensors";
/// The optimizer and run-state file in a run directory.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The loss curves in a run directory.
pub const PLOT_FILE: &str = "loss.png";

/// The settings of a run (fixed for its whole life; a resumed run keeps them).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Steps to train in all.
    pub steps: u64,
    /// Sequences per batch.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Learning rate at the end of the cosine.
    pub min_lr: f64,
    /// Linear warmup steps.
    pub warmup_steps: u64,
    /// Step at which the cosine reaches `min_lr`.
    pub lr_decay_steps: u64,
    /// AdamW's decoupled weight decay on parameters of rank ≥ 2.
    pub weight_decay: f64,
    /// AdamW's β₁, β₂.
    pub betas: (f64, f64),
    /// Gradient clipping by global norm (0: off).
    pub grad_clip: f64,
    /// Seed of the weights, batches and noise.
    pub seed: u64,
    /// Evaluate every this many steps (0: only at the end).
    pub eval_every: u64,
    /// Batches per loss estimate.
    pub eval_iters: usize,
    /// FNV-1a checksum of the corpus file.
    pub data_checksum: u64,
}

/// Where a run stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunState {
    /// Steps done.
    pub step: u64,
    /// Position of the batch RNG.
    pub rng_state: u64,
    /// Position of the model's Gumbel noise stream.
    pub noise_calls: u64,
    /// Seconds of wall time so far (all sessions).
    pub elapsed_s: f64,
    /// Seconds spent in training steps so far (all sessions).
    pub step_time_s: f64,
    /// The training cross-entropy of every step.
    pub train_loss: Vec<f64>,
    /// Evaluations: (step, train estimate, validation estimate).
    pub evals: Vec<(u64, f64, f64)>,
}

/// What a run directory holds, read back.
pub struct Checkpoint {
    /// The model's spec.
    pub spec: ModelSpec,
    /// The model file (its tensors).
    pub model: SafeTensorsFile,
    /// The run's settings.
    pub settings: Settings,
    /// The run's state.
    pub state: RunState,
    /// The optimizer's state tensors (without the `optim.` prefix).
    pub optimizer: Vec<(String, Tensor)>,
}

fn put(m: &mut BTreeMap<String, String>, k: &str, v: impl ToString) {
    m.insert(k.to_string(), v.to_string());
}

fn get<T: std::str::FromStr>(
    m: &BTreeMap<String, String>,
    file: &Path,
    k: &str,
) -> Result<T, String> {
    let v = m
        .get(k)
        .ok_or_else(|| format!("{}: metadata `{k}` is missing", file.display()))?;
    v.parse()
        .map_err(|_| format!("{}: metadata `{k}` = {v:?} is not valid", file.display()))
}

fn f64_tensor(v: &[f64]) -> Result<Tensor, String> {
    Tensor::from_vec(v.to_vec(), &[v.len()]).map_err(|e| e.to_string())
}

/// Writes the run directory `dir`: the optimizer file, then the model file, then the plot.
pub fn save(
    dir: &Path,
    spec: &ModelSpec,
    model_tensors: &[(String, Tensor)],
    optimizer: &[(String, Tensor)],
    settings: &Settings,
    state: &RunState,
) -> Result<(), String> {
    let mut m = BTreeMap::new();
    let s = settings;
    put(&mut m, "model", spec.kind.name());
    put(&mut m, "steps", s.steps);
    put(&mut m, "batch", s.batch);
    put(&mut m, "lr", s.lr);
    put(&mut m, "min_lr", s.min_lr);
    put(&mut m, "warmup_steps", s.warmup_steps);
    put(&mut m, "lr_decay_steps", s.lr_decay_steps);
    put(&mut m, "weight_decay", s.weight_decay);
    put(&mut m, "beta1", s.betas.0);
    put(&mut m, "beta2", s.betas.1);
    put(&mut m, "grad_clip", s.grad_clip);
    put(&mut m, "seed", s.seed);
    put(&mut m, "eval_every", s.eval_every);
    put(&mut m, "eval_iters", s.eval_iters);
    put(&mut m, "data_checksum", s.data_checksum);
    put(&mut m, "step", state.step);
    put(&mut m, "rng_state", state.rng_state);
    put(&mut m, "noise_calls", state.noise_calls);
    put(&mut m, "elapsed_s", state.elapsed_s);
    put(&mut m, "step_time_s", state.step_time_s);
    let mut tensors: Vec<(String, Tensor)> = optimizer
        .iter()
        .map(|(k, t)| (format!("optim.{k}"), t.clone()))
        .collect();
    if !state.train_loss.is_empty() {
        tensors.push(("history.train_loss".into(), f64_tensor(&state.train_loss)?));
    }
    if !state.evals.is_empty() {
        let col =
            |f: fn(&(u64, f64, f64)) -> f64| -> Vec<f64> { state.evals.iter().map(f).collect() };
        tensors.push((
            "history.eval_step".into(),
            f64_tensor(&col(|e| e.0 as f64))?,
        ));
        tensors.push(("history.eval_train".into(), f64_tensor(&col(|e| e.1))?));
        tensors.push(("history.eval_val".into(), f64_tensor(&col(|e| e.2))?));
    }
    let opt_path = dir.join(OPTIMIZER_FILE);
    save_safetensors(&opt_path, &tensors, &m).map_err(|e| e.to_string())?;

    let mut mm = spec.metadata();
    put(&mut mm, "step", state.step);
    save_safetensors(dir.join(MODEL_FILE), model_tensors, &mm).map_err(|e| e.to_string())?;
    plot(dir, spec.kind.name(), state)
}

/// Draws `loss.png`: the training loss of every step and the evaluations.
fn plot(dir: &Path, model: &str, state: &RunState) -> Result<(), String> {
    if state.train_loss.is_empty() {
        return Ok(());
    }
    let train: Vec<(f64, f64)> = state
        .train_loss
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as f64, l))
        .collect();
    let val: Vec<(f64, f64)> = state.evals.iter().map(|e| (e.0 as f64, e.2)).collect();
    let est: Vec<(f64, f64)> = state.evals.iter().map(|e| (e.0 as f64, e.1)).collect();
    let mut series: Vec<(&str, &[(f64, f64)])> = vec![("train (batch)", &train)];
    if !val.is_empty() {
        series.push(("train (estimate)", &est));
        series.push(("validation", &val));
    }
    line_plot_xy_png(
        &dir.join(PLOT_FILE),
        &series,
        &PlotOptions {
            title: format!("{model}: cross-entropy (nats/char)"),
            x_label: "step".into(),
            y_label: "loss".into(),
            log_y: false,
        },
    )
    .map_err(|e| e.to_string())
}

/// Reads the model file `path` (a run directory or a `.safetensors` file) and its spec.
pub fn load_model_file(path: &Path) -> Result<(PathBuf, SafeTensorsFile, ModelSpec), String> {
    let file = if path.is_dir() {
        path.join(MODEL_FILE)
    } else {
        path.to_path_buf()
    };
    if !file.exists() {
        return Err(if path.is_dir() {
            format!(
                "{} holds no {MODEL_FILE}: not a training run directory",
                path.display()
            )
        } else {
            format!("{}: no such file or directory", path.display())
        });
    }
    let st = load_safetensors(&file).map_err(|e| e.to_string())?;
    let spec =
        ModelSpec::from_metadata(&st.metadata).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok((file, st, spec))
}

/// Reads the run directory `dir` for `--resume`, checking that it holds a `kind` model and
/// that its two files agree.
pub fn load(dir: &Path, kind: ModelKind) -> Result<Checkpoint, String> {
    if !dir.exists() {
        return Err(format!("--resume {}: no such directory", dir.display()));
    }
    if !dir.is_dir() {
        return Err(format!(
            "--resume {}: not a directory (give the run's --out directory)",
            dir.display()
        ));
    }
    let (model_path, model, spec) = load_model_file(dir).map_err(|e| format!("--resume: {e}"))?;
    if spec.kind != kind {
        return Err(format!(
            "--resume {}: {} holds a {} model, not {}",
            dir.display(),
            model_path.display(),
            spec.kind.name(),
            kind.name()
        ));
    }
    let opt_path = dir.join(OPTIMIZER_FILE);
    if !opt_path.exists() {
        return Err(format!(
            "--resume {}: no {OPTIMIZER_FILE} beside the model, so training cannot go on \
             (eval and sample work with the model alone)",
            dir.display()
        ));
    }
    let opt = load_safetensors(&opt_path).map_err(|e| format!("--resume: {e}"))?;
    let m = &opt.metadata;
    let p = opt_path.as_path();
    let opt_model: String = get(m, p, "model")?;
    if opt_model != kind.name() {
        return Err(format!(
            "--resume {}: {} belongs to a {opt_model} run, not {}",
            dir.display(),
            p.display(),
            kind.name()
        ));
    }
    let settings = Settings {
        steps: get(m, p, "steps")?,
        batch: get(m, p, "batch")?,
        lr: get(m, p, "lr")?,
        min_lr: get(m, p, "min_lr")?,
        warmup_steps: get(m, p, "warmup_steps")?,
        lr_decay_steps: get(m, p, "lr_decay_steps")?,
        weight_decay: get(m, p, "weight_decay")?,
        betas: (get(m, p, "beta1")?, get(m, p, "beta2")?),
        grad_clip: get(m, p, "grad_clip")?,
        seed: get(m, p, "seed")?,
        eval_every: get(m, p, "eval_every")?,
        eval_iters: get(m, p, "eval_iters")?,
        data_checksum: get(m, p, "data_checksum")?,
    };
    let step: u64 = get(m, p, "step")?;
    let model_step: u64 = get(&model.metadata, &model_path, "step")?;
    if step != model_step {
        return Err(format!(
            "--resume {}: {} is at step {model_step} but {} at step {step} (the run stopped \
             between writing the two); start again from an earlier copy or a new run",
            dir.display(),
            model_path.display(),
            p.display()
        ));
    }
    let history = |name: &str| -> Result<Vec<f64>, String> {
        match opt.get(name) {
            None => Ok(Vec::new()),
            Some(t) if t.rank() == 1 && t.dtype() == DType::F64 => Ok(t.to_vec_f64()),
            Some(t) => Err(format!(
                "{}: `{name}` should be a 1-d f64 tensor, got {:?} {:?}",
                p.display(),
                t.dtype(),
                t.dims()
            )),
        }
    };
    let train_loss = history("history.train_loss")?;
    if train_loss.len() as u64 != step {
        return Err(format!(
            "{}: `history.train_loss` holds {} losses for {step} steps",
            p.display(),
            train_loss.len()
        ));
    }
    let (es, et, ev) = (
        history("history.eval_step")?,
        history("history.eval_train")?,
        history("history.eval_val")?,
    );
    if es.len() != et.len() || es.len() != ev.len() {
        return Err(format!(
            "{}: the `history.eval_*` tensors differ in length",
            p.display()
        ));
    }
    let state = RunState {
        step,
        rng_state: get(m, p, "rng_state")?,
        noise_calls: get(m, p, "noise_calls")?,
        elapsed_s: get(m, p, "elapsed_s")?,
        step_time_s: get(m, p, "step_time_s")?,
        train_loss,
        evals: es
            .iter()
            .zip(&et)
            .zip(&ev)
            .map(|((&s, &t), &v)| (s as u64, t, v))
            .collect(),
    };
    let optimizer = opt
        .tensors
        .iter()
        .filter_map(|(k, t)| k.strip_prefix("optim.").map(|k| (k.to_string(), t.clone())))
        .collect();
    Ok(Checkpoint {
        spec,
        model,
        settings,
        state,
        optimizer,
    })
}
