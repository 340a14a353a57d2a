//! Finite-difference checks of first and second derivatives (PyTorch's `gradcheck` and
//! `gradgradcheck`, JAX's `check_grads`).

use crate::autograd::{grad, GradOptions};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The most random directions [`gradcheck`] runs (each costs a backward and two forward
/// passes): more is an error, not a run that never returns.
///
/// ```
/// use eingrad::{Tensor, DType, func::{gradcheck, GradcheckOptions, MAX_DIRECTIONS}};
/// let x = Tensor::randn(&[300], DType::F64, 0).unwrap();
/// let opts = GradcheckOptions { directions: MAX_DIRECTIONS + 1, ..Default::default() };
/// assert!(gradcheck(&|xs: &[Tensor]| Ok(vec![xs[0].tanh()?]), &[x], opts).is_err());
/// ```
pub const MAX_DIRECTIONS: usize = 1 << 16;

/// Tolerances and sizes for [`gradcheck`].
#[derive(Debug, Clone, Copy)]
pub struct GradcheckOptions {
    /// Central-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
    /// Inputs with at most this many elements in all are checked entry by entry (the full
    /// Jacobian); larger ones along `directions` random directions.
    pub max_full_elements: usize,
    /// Number of random directions for large inputs (at most [`MAX_DIRECTIONS`]).
    pub directions: usize,
    /// Seed for random directions and cotangents.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
            max_full_elements: 256,
            directions: 6,
            seed: 0,
        }
    }
}

/// What [`gradcheck`] found: the worst entry and whether all were within tolerance.
#[derive(Debug, Clone)]
pub struct GradcheckReport {
    /// True when every compared entry satisfied |a − n| ≤ atol + rtol·|n|.
    pub passed: bool,
    /// Largest |analytic − numeric| seen.
    pub max_abs_err: f64,
    /// Human-readable description of the worst entry.
    pub worst: String,
}

/// Keeps the worst entry: the one furthest past its tolerance, or if none failed, the
/// largest absolute error.
#[derive(Default)]
struct Tracker {
    max_abs_err: f64,
    failed_excess: Option<f64>,
    worst: String,
}

impl Tracker {
    fn note(&mut self, a: f64, n: f64, what: String, atol: f64, rtol: f64) {
        let err = (a - n).abs();
        let tol = atol + rtol * n.abs();
        let ok = err <= tol || (a.is_nan() && n.is_nan());
        let describe = || format!("{what}: analytic {a:.8e}, numeric {n:.8e}");
        if !ok
            && self
                .failed_excess
                .is_none_or(|e| err - tol > e || (err - tol).is_nan())
        {
            self.failed_excess = Some(err - tol);
            self.worst = describe();
        }
        if err > self.max_abs_err || err.is_nan() {
            self.max_abs_err = err;
            if self.failed_excess.is_none() {
                self.worst = describe();
            }
        }
    }
}

fn check_inputs(op: &'static str, inputs: &[Tensor]) -> Result<()> {
    for (i, t) in inputs.iter().enumerate() {
        if t.dtype() != DType::F64 {
            return Err(Error::arg(
                op,
                "inputs",
                format!("input {i} is {:?}; finite differences need f64", t.dtype()),
            ));
        }
    }
    Ok(())
}

fn eval(f: &dyn Fn(&[Tensor]) -> Result<Vec<Tensor>>, inputs: &[Tensor]) -> Result<Vec<f64>> {
    // Perturbed copies are leaves that require grad, so that a function which itself takes
    // gradients (as in gradgradcheck) still works.
    let xs: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.detach().requires_grad_(true))
        .collect();
    let outs = f(&xs)?;
    Ok(outs.iter().flat_map(|o| o.to_vec_f64()).collect())
}

/// The options every check validates first, with errors naming the check `op` that was
/// called (so gradgradcheck's say gradgradcheck, not the gradcheck inside it).
fn check_options(op: &'static str, opts: &GradcheckOptions) -> Result<()> {
    if opts.directions > MAX_DIRECTIONS {
        return Err(Error::arg(
            op,
            "opts.directions",
            format!(
                "{} random directions requested; at most {MAX_DIRECTIONS} are run",
                opts.directions
            ),
        ));
    }
    if !(opts.eps.is_finite() && opts.eps > 0.0) {
        return Err(Error::arg(
            op,
            "opts.eps",
            format!("the step must be finite and positive, not {}", opts.eps),
        ));
    }
    Ok(())
}

/// Compares the gradients autograd gives for `f` at `inputs` (f64 leaves) with central
/// finite differences. Small inputs: the full Jacobian, entry by entry; large inputs:
/// random directions `v` compared as ⟨u, J v⟩ for random cotangents `u`.
///
/// ```
/// use eingrad::{Tensor, DType, func::{gradcheck, GradcheckOptions}};
/// let x = Tensor::randn(&[3], DType::F64, 0).unwrap();
/// let r = gradcheck(&|xs: &[Tensor]| Ok(vec![xs[0].tanh()?]), &[x], GradcheckOptions::default()).unwrap();
/// assert!(r.passed, "{}", r.worst);
/// ```
pub fn gradcheck(
    f: &dyn Fn(&[Tensor]) -> Result<Vec<Tensor>>,
    inputs: &[Tensor],
    opts: GradcheckOptions,
) -> Result<GradcheckReport> {
    check_inputs("gradcheck", inputs)?;
    check_options("gradcheck", &opts)?;
    let leaves: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.detach().requires_grad_(true))
        .collect();
    let outs = f(&leaves)?;
    if outs.is_empty() {
        return Err(Error::arg("gradcheck", "f", "returned no tensor"));
    }
    let out_sizes: Vec<usize> = outs.iter().map(|o| o.numel()).collect();
    let total_out: usize = out_sizes.iter().sum();
    let total_in: usize = leaves.iter().map(|t| t.numel()).sum();
    let live: Vec<usize> = (0..outs.len())
        .filter(|&i| outs[i].requires_grad())
        .collect();
    let mut track = Tracker::default();
    let mut note = |a: f64, n: f64, what: String| track.note(a, n, what, opts.atol, opts.rtol);
    // Analytic vector-Jacobian products for the cotangents we use.
    let vjp = |cot: &[Tensor]| -> Result<Vec<Vec<f64>>> {
        let (o, c): (Vec<Tensor>, Vec<Tensor>) = live
            .iter()
            .map(|&i| (outs[i].clone(), cot[i].clone()))
            .unzip();
        if o.is_empty() {
            return Ok(leaves.iter().map(|t| vec![0.0; t.numel()]).collect());
        }
        let g = grad(
            &o,
            &leaves,
            Some(&c),
            GradOptions::default().retain_graph(true).allow_unused(true),
        )?;
        Ok(g.into_iter()
            .zip(&leaves)
            .map(|(g, t)| {
                g.map(|g| g.to_vec_f64())
                    .unwrap_or_else(|| vec![0.0; t.numel()])
            })
            .collect())
    };
    let perturbed = |i: usize, dir: &[f64], h: f64| -> Result<Vec<f64>> {
        let mut xs: Vec<Tensor> = leaves.iter().map(|t| t.detach()).collect();
        let v: Vec<f64> = xs[i]
            .to_vec_f64()
            .iter()
            .zip(dir)
            .map(|(x, d)| x + h * d)
            .collect();
        xs[i] = Tensor::from_f64s(&v, leaves[i].dims(), DType::F64)?;
        eval(f, &xs)
    };
    if total_in <= opts.max_full_elements && total_out <= opts.max_full_elements {
        // Full Jacobian: rows by backward with one-hot cotangents, columns by differences.
        let mut rows: Vec<Vec<Vec<f64>>> = Vec::with_capacity(total_out);
        for r in 0..total_out {
            let mut cot = Vec::with_capacity(outs.len());
            let mut base = 0;
            for (o, &n) in outs.iter().zip(&out_sizes) {
                let mut v = vec![0.0; n];
                if r >= base && r < base + n {
                    v[r - base] = 1.0;
                }
                base += n;
                cot.push(Tensor::from_f64s(&v, o.dims(), DType::F64)?);
            }
            rows.push(vjp(&cot)?);
        }
        for (i, t) in leaves.iter().enumerate() {
            for j in 0..t.numel() {
                let mut dir = vec![0.0; t.numel()];
                dir[j] = 1.0;
                let plus = perturbed(i, &dir, opts.eps)?;
                let minus = perturbed(i, &dir, -opts.eps)?;
                for r in 0..total_out {
                    let n = (plus[r] - minus[r]) / (2.0 * opts.eps);
                    note(rows[r][i][j], n, format!("d out[{r}] / d input {i}[{j}]"));
                }
            }
        }
    } else {
        for d in 0..opts.directions {
            let seed = opts.seed.wrapping_add(d as u64 * 7919);
            let cot: Vec<Tensor> = outs
                .iter()
                .enumerate()
                .map(|(k, o)| Tensor::randn(o.dims(), DType::F64, seed + 100 + k as u64))
                .collect::<Result<_>>()?;
            let u: Vec<f64> = cot.iter().flat_map(|c| c.to_vec_f64()).collect();
            let g = vjp(&cot)?;
            for (i, t) in leaves.iter().enumerate() {
                let dir = Tensor::randn(t.dims(), DType::F64, seed + 1000 + i as u64)?.to_vec_f64();
                let plus = perturbed(i, &dir, opts.eps)?;
                let minus = perturbed(i, &dir, -opts.eps)?;
                let numeric: f64 = u
                    .iter()
                    .zip(plus.iter().zip(&minus))
                    .map(|(u, (p, m))| u * (p - m) / (2.0 * opts.eps))
                    .sum();
                let analytic: f64 = g[i].iter().zip(&dir).map(|(a, b)| a * b).sum();
                note(
                    analytic,
                    numeric,
                    format!("direction {d}, input {i}: <u, J v>"),
                );
            }
        }
    }
    Ok(GradcheckReport {
        passed: track.failed_excess.is_none(),
        max_abs_err: track.max_abs_err,
        worst: if track.worst.is_empty() {
            "no entries compared".into()
        } else {
            track.worst
        },
    })
}

/// Checks second derivatives: [`gradcheck`] of `x ↦ vjp(f, x, u)` (built with
/// `create_graph`) for a fixed random cotangent `u`.
///
/// ```
/// use eingrad::{Tensor, DType, func::{gradgradcheck, GradcheckOptions}};
/// let x = Tensor::randn(&[3], DType::F64, 0).unwrap();
/// let r = gradgradcheck(&|xs: &[Tensor]| Ok(vec![xs[0].sin()?]), &[x], GradcheckOptions::default()).unwrap();
/// assert!(r.passed, "{}", r.worst);
/// ```
pub fn gradgradcheck(
    f: &dyn Fn(&[Tensor]) -> Result<Vec<Tensor>>,
    inputs: &[Tensor],
    opts: GradcheckOptions,
) -> Result<GradcheckReport> {
    check_inputs("gradgradcheck", inputs)?;
    check_options("gradgradcheck", &opts)?;
    // Probe the output shapes with leaves like `eval` makes (not under no_grad: `f` may take
    // gradients itself, e.g. when checking a gradient function).
    let probe_inputs: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.detach().requires_grad_(true))
        .collect();
    let probe = f(&probe_inputs)?;
    let cot: Vec<Tensor> = probe
        .iter()
        .enumerate()
        .map(|(k, o)| Tensor::randn(o.dims(), DType::F64, opts.seed + 31 + k as u64))
        .collect::<Result<_>>()?;
    let first = move |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        let outs = f(xs)?;
        let (o, c): (Vec<Tensor>, Vec<Tensor>) = outs
            .iter()
            .zip(&cot)
            .filter(|(o, _)| o.requires_grad())
            .map(|(o, c)| (o.clone(), c.clone()))
            .unzip();
        let diff: Vec<Tensor> = xs.iter().filter(|x| x.requires_grad()).cloned().collect();
        if o.is_empty() || diff.is_empty() {
            return xs.iter().map(|x| x.zeros_like()).collect();
        }
        let gs = grad(
            &o,
            &diff,
            Some(&c),
            GradOptions::default().create_graph(true).allow_unused(true),
        )?;
        gs.into_iter()
            .zip(&diff)
            .map(|(g, x)| g.map_or_else(|| x.zeros_like(), Ok))
            .collect()
    };
    gradcheck(
        &first,
        inputs,
        GradcheckOptions {
            atol: opts.atol * 10.0,
            rtol: opts.rtol * 10.0,
            ..opts
        },
    )
}
