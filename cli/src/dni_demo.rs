//! [`dni_demo`]: a small runnable experiment with Decoupled Neural Interfaces
//! ([`eingrad::models::dni`]), the one behind `eingrad seeds`' seed 001. It is written on the
//! library's public API only.

use eingrad::autograd::{grad, GradOptions};
use eingrad::error::AutogradError;
use eingrad::models::dni::{
    backward, defer_backward, synthetic_gradient_update, with_synthesizer_context,
    BackwardInterface, BasicSynthesizer, BasicSynthesizerConfig,
};
use eingrad::nn::{cross_entropy, Linear, Module, Reduction};
use eingrad::optim::{Adam, AdamConfig, Optimizer};
use eingrad::{DType, Error, Result, Tensor};

/// Derives an independent seed for part `k` of a run seeded with `seed` (a SplitMix64
/// finaliser). The same function seeds the library's synthesizers, so the demo's numbers are
/// those it gave inside the library.
fn mix_seed(seed: u64, k: u64) -> u64 {
    let mut z = seed
        .wrapping_add(k.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x5DEE_CE66_D1CE_4E5B);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The settings of [`dni_demo_with`]; [`DniDemoConfig::default`] is what [`dni_demo`] runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DniDemoConfig {
    /// Training steps (one fresh batch each).
    pub steps: usize,
    /// Seed of the data, the initial weights and everything else.
    pub seed: u64,
    /// Input width.
    pub input_dim: usize,
    /// Width of the hidden layer, where the interface sits.
    pub hidden_dim: usize,
    /// Number of classes.
    pub classes: usize,
    /// Examples per batch.
    pub batch_size: usize,
    /// Adam's learning rate (for the MLP and the synthesizer).
    pub lr: f64,
    /// Condition the synthesizer on the one-hot labels (cDNI), through the context stack.
    pub label_context: bool,
}

impl Default for DniDemoConfig {
    fn default() -> Self {
        DniDemoConfig {
            steps: 300,
            seed: 0,
            input_dim: 16,
            hidden_dim: 32,
            classes: 4,
            batch_size: 64,
            lr: 3e-3,
            label_context: true,
        }
    }
}

/// What [`dni_demo`] measured.
#[derive(Debug, Clone)]
pub struct DniDemoReport {
    /// The settings it ran with.
    pub config: DniDemoConfig,
    /// Per step: the synthesizer's loss `Σ(sg − g)²/B` between its synthetic gradient and the
    /// true gradient of the task loss at the hidden pre-activation (before the step's update).
    pub synthesizer_loss: Vec<f64>,
    /// Per step: the task's cross-entropy.
    pub task_loss: Vec<f64>,
    /// Per step: the cosine similarity of the synthetic and the true gradient (whole batch).
    pub gradient_cosine: Vec<f64>,
    /// On the first batch: the largest absolute difference between the updater's gradients
    /// (from autograd) and the formulas `g` and `(2/B)(sg − g)`.
    pub updater_max_abs_err: f64,
    /// On the first batch: the largest absolute difference between the synthesizer's parameter
    /// gradients through the updater and those of `Σ(synth(h) − g)²/B` by plain autograd.
    pub synthesizer_grad_max_abs_err: f64,
}

impl DniDemoReport {
    /// Means of the first and of the last tenth (at least one entry) of a series.
    pub fn first_last_tenth(series: &[f64]) -> (f64, f64) {
        let n = series.len();
        let k = (n / 10).max(1).min(n);
        let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len().max(1) as f64;
        (mean(&series[..k]), mean(&series[n - k..]))
    }
}

impl std::fmt::Display for DniDemoReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.config;
        let (s0, s1) = Self::first_last_tenth(&self.synthesizer_loss);
        let (t0, t1) = Self::first_last_tenth(&self.task_loss);
        let (c0, c1) = Self::first_last_tenth(&self.gradient_cosine);
        writeln!(
            f,
            "DNI (SEEDS.md §3): {}→{}→{} MLP, synthetic gradient at the hidden pre-activation{}, \
             {} steps of batch {}",
            c.input_dim,
            c.hidden_dim,
            c.classes,
            if c.label_context { " (cDNI)" } else { "" },
            c.steps,
            c.batch_size
        )?;
        writeln!(f, "  first → last 10% of steps:")?;
        writeln!(f, "    synthesizer loss Σ(sg−g)²/B   {s0:.4e} → {s1:.4e}")?;
        writeln!(f, "    cos(synthetic, true gradient) {c0:.3} → {c1:.3}")?;
        writeln!(f, "    task cross-entropy            {t0:.4} → {t1:.4}")?;
        writeln!(
            f,
            "  updater gradients vs g and (2/B)(sg−g), max abs error: {:.3e}",
            self.updater_max_abs_err
        )?;
        write!(
            f,
            "  synthesizer grads vs autograd of Σ(sg−g)²/B, max abs error: {:.3e}",
            self.synthesizer_grad_max_abs_err
        )
    }
}

/// A batch of the demo's task: x ~ N(0, 1), label = argmax of a fixed random linear teacher.
fn demo_batch(cfg: &DniDemoConfig, teacher: &[f64], seed: u64) -> Result<(Tensor, Vec<usize>)> {
    let x = Tensor::randn(&[cfg.batch_size, cfg.input_dim], DType::F64, seed)?;
    let xv = x.to_vec::<f64>()?;
    let d = cfg.input_dim;
    let labels = xv
        .chunks_exact(d)
        .map(|row| {
            let score = |c: usize| -> f64 {
                let w = &teacher[c * d..(c + 1) * d];
                row.iter().zip(w).map(|(a, b)| a * b).sum()
            };
            (0..cfg.classes)
                .max_by(|&a, &b| score(a).total_cmp(&score(b)))
                .unwrap_or(0)
        })
        .collect();
    Ok((x, labels))
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    a.to_vec_f64()
        .iter()
        .zip(b.to_vec_f64())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Checks the updater on one batch: its autograd gradients against the formulas, and the
/// synthesizer's parameter gradients through it against plain autograd of `Σ(sg − g)²/B`.
/// Runs under the caller's synthesizer context.
fn updater_check(iface: &BackwardInterface, h: &Tensor, g: &Tensor) -> Result<(f64, f64)> {
    let b = h.dims()[0] as f64;
    let sg = iface.receive(h)?.requires_grad_(true);
    let trig = h.detach().requires_grad_(true);
    let out = synthetic_gradient_update(&trig, &sg)?;
    let gs = grad(
        &[out],
        &[trig, sg.clone()],
        Some(std::slice::from_ref(g)),
        GradOptions::default(),
    )?;
    let (sv, gv) = (sg.to_vec_f64(), g.to_vec_f64());
    let want: Vec<f64> = sv.iter().zip(&gv).map(|(s, t)| 2.0 / b * (s - t)).collect();
    let want = Tensor::from_f64s(&want, g.dims(), g.dtype())?;
    let err_formula = match (&gs[0], &gs[1]) {
        (Some(gt), Some(gsg)) => max_abs_diff(gt, g).max(max_abs_diff(gsg, &want)),
        _ => f64::INFINITY,
    };
    let params = iface.parameters();
    let trig = h.detach();
    let out = iface.make_trigger(&trig)?;
    let via_updater = grad(
        &[out],
        &params,
        Some(std::slice::from_ref(g)),
        GradOptions::default(),
    )?;
    let d = iface.interface().synthesize(&trig)?.sub(g)?;
    let l = d.mul(&d)?.sum_all()?.mul_scalar(1.0 / b)?;
    let via_mse = grad(&[l], &params, None, GradOptions::default())?;
    let mut err_params: f64 = 0.0;
    for (a, m) in via_updater.iter().zip(&via_mse) {
        err_params = match (a, m) {
            (Some(a), Some(m)) => err_params.max(max_abs_diff(a, m)),
            _ => f64::INFINITY,
        };
    }
    Ok((err_formula, err_params))
}

fn maybe_in_context<R>(context: Option<&Tensor>, f: impl FnOnce() -> R) -> R {
    match context {
        Some(c) => with_synthesizer_context(c, f),
        None => f(),
    }
}

/// [`dni_demo_with`] with the default settings except `steps` and `seed`.
///
/// ```
/// let r = eingrad_cli::dni_demo::dni_demo(60, 0).unwrap();
/// assert_eq!(r.synthesizer_loss.len(), 60);
/// assert!(r.updater_max_abs_err < 1e-12);
/// ```
pub fn dni_demo(steps: usize, seed: u64) -> Result<DniDemoReport> {
    dni_demo_with(&DniDemoConfig {
        steps,
        seed,
        ..DniDemoConfig::default()
    })
}

/// A small runnable DNI experiment (the seed's MNIST MLP in miniature, without a download):
/// an MLP `input → hidden → classes` in f64 on seeded synthetic data (Gaussian inputs labelled
/// by a random linear teacher, a fresh batch per step), trained with Adam. A
/// [`BackwardInterface`] with a one-hidden-layer [`BasicSynthesizer`] sits on the hidden
/// pre-activation, so the first layer learns from the synthetic gradient only, while the
/// output layer and the synthesizer learn from the true gradient. With `label_context` the
/// synthesizer also sees the one-hot labels (cDNI) through [`with_synthesizer_context`]. Each
/// step is one [`defer_backward`] scope. On the first batch it also checks the updater's
/// gradient formula. Errors for zero sizes or steps and a bad learning rate.
pub fn dni_demo_with(cfg: &DniDemoConfig) -> Result<DniDemoReport> {
    const OP: &str = "dni_demo";
    for (name, v) in [
        ("steps", cfg.steps),
        ("input_dim", cfg.input_dim),
        ("hidden_dim", cfg.hidden_dim),
        ("classes", cfg.classes),
        ("batch_size", cfg.batch_size),
    ] {
        if v == 0 {
            return Err(Error::InvalidArgument {
                op: OP,
                arg: name,
                msg: "must be at least 1".into(),
            });
        }
    }
    let dtype = DType::F64;
    let seed = cfg.seed;
    let teacher =
        Tensor::randn(&[cfg.classes, cfg.input_dim], dtype, mix_seed(seed, 0))?.to_vec::<f64>()?;
    let l1 = Linear::new(
        cfg.input_dim,
        cfg.hidden_dim,
        true,
        dtype,
        mix_seed(seed, 1),
    )?;
    let l2 = Linear::new(cfg.hidden_dim, cfg.classes, true, dtype, mix_seed(seed, 2))?;
    let mut scfg = BasicSynthesizerConfig::new(cfg.hidden_dim).n_hidden(1);
    if cfg.label_context {
        scfg = scfg.context_dim(cfg.classes);
    }
    let synth = BasicSynthesizer::new(scfg, dtype, mix_seed(seed, 3))?;
    let iface = BackwardInterface::new(synth);
    let mut params = l1.parameters();
    params.extend(l2.parameters());
    params.extend(iface.parameters());
    let mut opt = Adam::new(
        params,
        AdamConfig {
            lr: cfg.lr,
            ..AdamConfig::default()
        },
    )?;

    let mut report = DniDemoReport {
        config: *cfg,
        synthesizer_loss: Vec::with_capacity(cfg.steps),
        task_loss: Vec::with_capacity(cfg.steps),
        gradient_cosine: Vec::with_capacity(cfg.steps),
        updater_max_abs_err: f64::NAN,
        synthesizer_grad_max_abs_err: f64::NAN,
    };
    for step in 0..cfg.steps {
        let (x, labels) = demo_batch(cfg, &teacher, mix_seed(seed, 1000 + step as u64))?;
        let context = if cfg.label_context {
            Some(Tensor::one_hot(&labels, cfg.classes, dtype)?)
        } else {
            None
        };
        opt.zero_grad();
        // Everything touching the synthesizer runs under the label context (when used).
        let (loss, sv, gv, check) = maybe_in_context(context.as_ref(), || -> Result<_> {
            let (loss, h, h_out) = defer_backward(|| {
                let h = l1.forward(&x)?;
                let h_out = iface.forward(&h)?;
                h_out.retain_grad();
                let logits = l2.forward(&h_out.relu()?)?;
                let loss = cross_entropy(&logits, &labels, Reduction::Mean)?;
                backward(&loss, None)?;
                Ok((loss, h, h_out))
            })?;
            let g = h_out.grad().ok_or_else(|| {
                Error::from(AutogradError::MissingGradient {
                    op: "dni_demo",
                    tensor: "the interface's output",
                })
            })?;
            let sg = iface.receive(&h)?;
            let check = if step == 0 {
                Some(updater_check(&iface, &h, &g)?)
            } else {
                None
            };
            Ok((loss.item()?, sg.to_vec_f64(), g.to_vec_f64(), check))
        })?;
        let sq: f64 = sv.iter().zip(&gv).map(|(s, t)| (s - t) * (s - t)).sum();
        let dot: f64 = sv.iter().zip(&gv).map(|(s, t)| s * t).sum();
        let ns = sv.iter().map(|s| s * s).sum::<f64>().sqrt();
        let ng = gv.iter().map(|t| t * t).sum::<f64>().sqrt();
        report.synthesizer_loss.push(sq / cfg.batch_size as f64);
        report.task_loss.push(loss);
        report
            .gradient_cosine
            .push(if ns * ng > 0.0 { dot / (ns * ng) } else { 0.0 });
        if let Some((e1, e2)) = check {
            report.updater_max_abs_err = e1;
            report.synthesizer_grad_max_abs_err = e2;
        }
        opt.step()?;
    }
    Ok(report)
}
