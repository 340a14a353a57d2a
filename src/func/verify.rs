//! Checking a hand-written backward against a reference implementation.
//!
//! [`verify_backward`] runs a "custom" function (typically one with its own derivative rule,
//! e.g. an [`apply_function`](crate::autograd::apply_function) of a
//! [`CustomFunction`](crate::autograd::CustomFunction)) and a reference (typically the same
//! math in plain differentiable ops) on the same inputs, and compares outputs and
//! vector–Jacobian products for random and one-hot cotangents, optionally with central finite
//! differences as a third opinion. The report says, per output and per input, how far apart
//! they are and where.

use std::fmt;

use crate::autograd::GradOptions;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

use super::vjp::{vjp_of_recorded, TensorFn};

/// Options of [`verify_backward`].
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions {
    /// Absolute tolerance; `None`: 1e-5 for f32, 1e-10 for f64.
    pub atol: Option<f64>,
    /// Relative tolerance; `None`: 1e-4 for f32, 1e-8 for f64.
    pub rtol: Option<f64>,
    /// Number of random (standard normal) cotangents.
    pub random_cotangents: usize,
    /// When all outputs together have at most this many elements, every one-hot cotangent is
    /// tried (the whole Jacobian is compared) …
    pub max_one_hot: usize,
    /// … otherwise this many, spread over the outputs (always including the first and last
    /// element).
    pub one_hot_samples: usize,
    /// Also compare the custom gradients with central finite differences of the reference
    /// (f64 inputs only).
    pub finite_differences: bool,
    /// Finite-difference step.
    pub fd_eps: f64,
    /// Tolerances for the finite-difference comparison.
    pub fd_atol: f64,
    /// Relative tolerance for the finite-difference comparison.
    pub fd_rtol: f64,
    /// Inputs with at most this many elements in all get the full numerical Jacobian; larger
    /// ones are probed along `fd_directions` random directions per input.
    pub fd_max_elements: usize,
    /// Random directions per input for large inputs.
    pub fd_directions: usize,
    /// Seed of the random cotangents, samples and directions.
    pub seed: u64,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            atol: None,
            rtol: None,
            random_cotangents: 4,
            max_one_hot: 64,
            one_hot_samples: 16,
            finite_differences: false,
            fd_eps: 1e-6,
            fd_atol: 1e-6,
            fd_rtol: 1e-4,
            fd_max_elements: 256,
            fd_directions: 4,
            seed: 0,
        }
    }
}

impl VerifyOptions {
    /// Sets both tolerances.
    pub fn tolerances(mut self, atol: f64, rtol: f64) -> Self {
        self.atol = Some(atol);
        self.rtol = Some(rtol);
        self
    }
    /// Turns the finite-difference third opinion on or off.
    pub fn finite_differences(mut self, on: bool) -> Self {
        self.finite_differences = on;
        self
    }
    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// How far apart two versions of one tensor were, over all the comparisons made.
#[derive(Debug, Clone)]
pub struct Discrepancy {
    /// What was compared, e.g. `"output 0"`, `"gradient of input 1"`,
    /// `"input 1 vs finite differences"`.
    pub what: String,
    /// Number of entries compared (over all cotangents).
    pub compared: usize,
    /// Largest |custom − reference|.
    pub max_abs_err: f64,
    /// Largest |custom − reference| / |reference| (∞ where the reference is 0 and they differ).
    pub max_rel_err: f64,
    /// Index (into this output or input) of the worst entry: the one furthest past the
    /// tolerance, or, when all passed, the one with the largest absolute error. Empty for a
    /// zero-dimensional tensor or a directional (finite-difference) probe.
    pub worst_index: Vec<usize>,
    /// The cotangent (or direction) that produced the worst entry, e.g. `"random 2"` or
    /// `"one-hot output 0 [1, 2]"`.
    pub worst_cotangent: Option<String>,
    /// The custom value at the worst entry.
    pub custom: f64,
    /// The reference value at the worst entry.
    pub reference: f64,
    /// True when every entry satisfied |c − r| ≤ atol + rtol·|r| (NaN = NaN, ±∞ = ±∞).
    pub passed: bool,
    /// For a finite-difference comparison: how many output entries were left out because the
    /// reference was not finite there (±∞ or NaN) at the inputs or at a perturbed point,
    /// where a difference quotient means nothing (∞ − ∞). Their cotangent entries are zeroed
    /// on both sides. Always 0 for the other comparisons.
    pub skipped: usize,
    rank: Option<(bool, f64)>,
}

impl Discrepancy {
    fn new(what: String) -> Self {
        Discrepancy {
            what,
            compared: 0,
            max_abs_err: 0.0,
            max_rel_err: 0.0,
            worst_index: Vec::new(),
            worst_cotangent: None,
            custom: 0.0,
            reference: 0.0,
            passed: true,
            skipped: 0,
            rank: None,
        }
    }

    /// Compares `custom` with `reference` entry by entry (`shape` for the indices).
    fn compare(
        &mut self,
        custom: &[f64],
        reference: &[f64],
        shape: &[usize],
        cot: Option<&str>,
        atol: f64,
        rtol: f64,
    ) {
        for (flat, (&c, &r)) in custom.iter().zip(reference).enumerate() {
            let same = c == r || (c.is_nan() && r.is_nan());
            let err = if same { 0.0 } else { (c - r).abs() };
            let err = if err.is_nan() { f64::INFINITY } else { err };
            let rel = if err == 0.0 {
                0.0
            } else if r == 0.0 {
                f64::INFINITY
            } else {
                err / r.abs()
            };
            let tol = atol + rtol * if r.is_finite() { r.abs() } else { 0.0 };
            let ok = err <= tol;
            self.compared += 1;
            self.max_abs_err = self.max_abs_err.max(err);
            self.max_rel_err = self.max_rel_err.max(rel);
            // Failing entries rank by how far past tolerance, passing ones by abs error.
            let rank = (!ok, if ok { err } else { err - tol });
            let worse = match self.rank {
                None => true,
                Some(cur) => (rank.0 && !cur.0) || (rank.0 == cur.0 && rank.1 > cur.1),
            };
            if !ok {
                self.passed = false;
            }
            if worse {
                self.rank = Some(rank);
                self.worst_index = unravel(flat, shape);
                self.worst_cotangent = cot.map(str::to_string);
                self.custom = c;
                self.reference = r;
            }
        }
    }
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        if shape[d] > 0 {
            idx[d] = flat % shape[d];
            flat /= shape[d];
        }
    }
    idx
}

/// What [`verify_backward`] found. `Display` prints it as a table.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// The dtype whose tolerances were used (f32 if any input is f32).
    pub dtype: DType,
    /// Absolute tolerance used.
    pub atol: f64,
    /// Relative tolerance used.
    pub rtol: f64,
    /// Number of cotangents tried (random + one-hot).
    pub cotangents: usize,
    /// One entry per output: forward values.
    pub forward: Vec<Discrepancy>,
    /// One entry per input: custom vs reference vector–Jacobian products.
    pub gradients: Vec<Discrepancy>,
    /// One entry per input: custom gradients vs finite differences of the reference (empty
    /// unless requested).
    pub finite_differences: Vec<Discrepancy>,
}

impl VerifyReport {
    /// True when every comparison passed.
    pub fn passed(&self) -> bool {
        self.all().all(|d| d.passed)
    }
    /// Every comparison, forward first.
    pub fn all(&self) -> impl Iterator<Item = &Discrepancy> {
        self.forward
            .iter()
            .chain(&self.gradients)
            .chain(&self.finite_differences)
    }
    /// The first failing comparison, if any.
    pub fn first_failure(&self) -> Option<&Discrepancy> {
        self.all().find(|d| !d.passed)
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "verify_backward: {} ({:?}; atol {:e}, rtol {:e}; {} cotangents)",
            if self.passed() { "passed" } else { "FAILED" },
            self.dtype,
            self.atol,
            self.rtol,
            self.cotangents
        )?;
        writeln!(
            f,
            "{:<34} {:>8} {:>11} {:>11}  {:<14} {:<28} {:>13} {:>13}  ok",
            "check",
            "entries",
            "max abs",
            "max rel",
            "worst at",
            "cotangent",
            "custom",
            "reference"
        )?;
        for d in self.all() {
            let idx = format!("{:?}", d.worst_index);
            writeln!(
                f,
                "{:<34} {:>8} {:>11.3e} {:>11.3e}  {:<14} {:<28} {:>13.6e} {:>13.6e}  {}",
                d.what,
                d.compared,
                d.max_abs_err,
                d.max_rel_err,
                idx,
                d.worst_cotangent.as_deref().unwrap_or("-"),
                d.custom,
                d.reference,
                if d.passed { "ok" } else { "FAIL" }
            )?;
            if d.skipped > 0 {
                writeln!(
                    f,
                    "{:<34} ({} non-finite output entries skipped)",
                    "", d.skipped
                )?;
            }
        }
        Ok(())
    }
}

/// A named set of cotangents (one per output).
struct Cotangent {
    name: String,
    tensors: Vec<Tensor>,
}

fn cotangents(outs: &[Tensor], opts: &VerifyOptions) -> Result<Vec<Cotangent>> {
    let mut cs = Vec::new();
    for r in 0..opts.random_cotangents {
        let seed = opts
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(17 + 101 * r as u64);
        cs.push(Cotangent {
            name: format!("random {r}"),
            tensors: outs
                .iter()
                .enumerate()
                .map(|(i, o)| Tensor::randn(o.dims(), o.dtype(), seed + i as u64))
                .collect::<Result<_>>()?,
        });
    }
    let total: usize = outs.iter().map(|o| o.numel()).sum();
    let picks: Vec<usize> = if total <= opts.max_one_hot {
        (0..total).collect()
    } else {
        let mut rng = crate::tensor::SplitMix64::new(opts.seed ^ 0xC0FFEE);
        let mut p = vec![0, total - 1];
        let want = opts.one_hot_samples.min(total);
        while p.len() < want {
            let c = (rng.next_u64() % total as u64) as usize;
            if !p.contains(&c) {
                p.push(c);
            }
        }
        p.truncate(want);
        p.sort_unstable();
        p
    };
    for flat in picks {
        let mut base = 0;
        let mut tensors = Vec::with_capacity(outs.len());
        let mut name = String::new();
        for (i, o) in outs.iter().enumerate() {
            let n = o.numel();
            let mut v = vec![0.0; n];
            if flat >= base && flat < base + n {
                v[flat - base] = 1.0;
                name = format!("one-hot output {i} {:?}", unravel(flat - base, o.dims()));
            }
            base += n;
            tensors.push(Tensor::from_f64s(&v, o.dims(), o.dtype())?);
        }
        cs.push(Cotangent { name, tensors });
    }
    Ok(cs)
}

fn run(f: &TensorFn<'_>, inputs: &[Tensor]) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
    let leaves: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.detach().requires_grad_(true))
        .collect();
    let outs = f(&leaves)?;
    Ok((leaves, outs))
}

/// Runs `custom` and `reference` on the same `inputs` and compares (1) their outputs and
/// (2) their gradients — vector–Jacobian products for `opts.random_cotangents` random
/// cotangents and for one-hot cotangents (all of them when the outputs are small, a sample
/// otherwise) — and, with `opts.finite_differences` (f64 only), (3) the custom gradients
/// against central differences of the reference. Output entries where the reference is not
/// finite (e.g. the −∞ of a masked score matrix) have no meaningful difference quotient: (3)
/// leaves them out on both sides and reports how many in [`Discrepancy::skipped`].
///
/// Values compare like `allclose(equal_nan = true)`: NaN equals NaN and ±∞ equals itself.
/// The two functions must return the same number of outputs with the same shapes and dtypes
/// (else an error). Inputs a function does not use get zero gradients.
///
/// ```
/// use eingrad::{Tensor, DType, func::{verify_backward, VerifyOptions}};
/// let x = Tensor::randn(&[4], DType::F64, 0).unwrap();
/// // "custom": tanh via exp; reference: tanh.
/// let custom = |xs: &[Tensor]| {
///     let e = xs[0].mul_scalar(2.0)?.exp()?;
///     Ok(vec![e.add_scalar(-1.0)?.div(&e.add_scalar(1.0)?)?])
/// };
/// let reference = |xs: &[Tensor]| Ok(vec![xs[0].tanh()?]);
/// let r = verify_backward(&custom, &reference, &[x], VerifyOptions::default().tolerances(1e-12, 1e-9)).unwrap();
/// assert!(r.passed(), "{r}");
/// ```
pub fn verify_backward(
    custom: &TensorFn<'_>,
    reference: &TensorFn<'_>,
    inputs: &[Tensor],
    opts: VerifyOptions,
) -> Result<VerifyReport> {
    const OP: &str = "verify_backward";
    if inputs.is_empty() {
        return Err(Error::arg(
            OP,
            "inputs",
            "at least one input tensor is needed",
        ));
    }
    let dtype = if inputs.iter().all(|t| t.dtype() == DType::F64) {
        DType::F64
    } else {
        DType::F32
    };
    let (def_atol, def_rtol) = match dtype {
        DType::F32 => (1e-5, 1e-4),
        DType::F64 => (1e-10, 1e-8),
    };
    let (atol, rtol) = (opts.atol.unwrap_or(def_atol), opts.rtol.unwrap_or(def_rtol));
    if opts.finite_differences && dtype != DType::F64 {
        return Err(Error::arg(
            OP,
            "opts",
            "finite differences need f64 inputs (some input is f32)",
        ));
    }

    let (leaves_c, outs_c) = run(custom, inputs)?;
    let (leaves_r, outs_r) = run(reference, inputs)?;
    if outs_c.is_empty() {
        return Err(Error::arg(OP, "custom", "returned no tensor"));
    }
    if outs_c.len() != outs_r.len() {
        return Err(Error::arg(
            OP,
            "custom",
            format!(
                "returned {} outputs but the reference returned {}",
                outs_c.len(),
                outs_r.len()
            ),
        ));
    }
    for (i, (c, r)) in outs_c.iter().zip(&outs_r).enumerate() {
        if c.dims() != r.dims() || c.dtype() != r.dtype() {
            return Err(Error::arg(
                OP,
                "custom",
                format!(
                    "output {i} has shape {:?} ({:?}) but the reference's has shape {:?} ({:?})",
                    c.dims(),
                    c.dtype(),
                    r.dims(),
                    r.dtype()
                ),
            ));
        }
    }

    let mut forward = Vec::with_capacity(outs_c.len());
    for (i, (c, r)) in outs_c.iter().zip(&outs_r).enumerate() {
        let mut d = Discrepancy::new(format!("output {i}"));
        d.compare(&c.to_vec_f64(), &r.to_vec_f64(), c.dims(), None, atol, rtol);
        forward.push(d);
    }

    let cots = cotangents(&outs_r, &opts)?;
    let mut gradients: Vec<Discrepancy> = (0..inputs.len())
        .map(|j| Discrepancy::new(format!("gradient of input {j}")))
        .collect();
    let keep = GradOptions::default().retain_graph(true);
    let mut custom_vjps: Vec<Vec<Vec<f64>>> = Vec::with_capacity(cots.len());
    for cot in &cots {
        let gc = vjp_of_recorded(&outs_c, &leaves_c, &cot.tensors, keep)?;
        let gr = vjp_of_recorded(&outs_r, &leaves_r, &cot.tensors, keep)?;
        let mut cv = Vec::with_capacity(gc.len());
        for (j, (c, r)) in gc.iter().zip(&gr).enumerate() {
            let c = c.to_vec_f64();
            gradients[j].compare(
                &c,
                &r.to_vec_f64(),
                inputs[j].dims(),
                Some(&cot.name),
                atol,
                rtol,
            );
            cv.push(c);
        }
        custom_vjps.push(cv);
    }

    let finite_differences = if opts.finite_differences {
        let custom_graph = CustomGraph {
            outs: &outs_c,
            leaves: &leaves_c,
            opts: keep,
        };
        let base: Vec<f64> = outs_r.iter().flat_map(|o| o.to_vec_f64()).collect();
        finite_difference_checks(
            reference,
            inputs,
            &cots,
            &custom_vjps,
            &custom_graph,
            &base,
            &opts,
        )?
    } else {
        Vec::new()
    };

    Ok(VerifyReport {
        dtype,
        atol,
        rtol,
        cotangents: cots.len(),
        forward,
        gradients,
        finite_differences,
    })
}

/// The reference's outputs, flattened, at `inputs` with input `j` moved by `h · dir`.
fn perturbed(
    reference: &TensorFn<'_>,
    inputs: &[Tensor],
    j: usize,
    dir: &[f64],
    h: f64,
) -> Result<Vec<f64>> {
    let mut xs: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.detach().requires_grad_(true))
        .collect();
    let v: Vec<f64> = inputs[j]
        .to_vec_f64()
        .iter()
        .zip(dir)
        .map(|(x, d)| x + h * d)
        .collect();
    xs[j] = Tensor::from_f64s(&v, inputs[j].dims(), DType::F64)?.requires_grad_(true);
    let outs = reference(&xs)?;
    Ok(outs.iter().flat_map(|o| o.to_vec_f64()).collect())
}

/// The custom function's recorded outputs, so that its VJP can be taken again with other
/// cotangents.
struct CustomGraph<'a> {
    outs: &'a [Tensor],
    leaves: &'a [Tensor],
    opts: GradOptions,
}

impl CustomGraph<'_> {
    /// The custom VJP of input `j` for `cot` with the output entries where `keep` is false
    /// zeroed (`keep` runs over all outputs, flattened).
    fn masked_vjp(&self, cot: &Cotangent, keep: &[bool], j: usize) -> Result<Vec<f64>> {
        let mut at = 0;
        let masked = cot
            .tensors
            .iter()
            .map(|c| {
                let v: Vec<f64> = c
                    .to_vec_f64()
                    .into_iter()
                    .zip(&keep[at..])
                    .map(|(u, &k)| if k { u } else { 0.0 })
                    .collect();
                at += v.len();
                Tensor::from_f64s(&v, c.dims(), c.dtype())
            })
            .collect::<Result<Vec<_>>>()?;
        let gs = vjp_of_recorded(self.outs, self.leaves, &masked, self.opts)?;
        Ok(gs[j].to_vec_f64())
    }
}

/// Central differences `(p − m)/2h`, marking in `keep` the output entries where either
/// evaluation is not finite.
fn central(p: &[f64], m: &[f64], h: f64, keep: &mut [bool]) -> Vec<f64> {
    p.iter()
        .zip(m)
        .zip(keep.iter_mut())
        .map(|((a, b), k)| {
            if !(a.is_finite() && b.is_finite()) {
                *k = false;
            }
            (a - b) / (2.0 * h)
        })
        .collect()
}

/// Σ u·col over the kept entries (a skipped entry's NaN never enters).
fn masked_dot(col: &[f64], u: &[f64], keep: &[bool]) -> f64 {
    col.iter()
        .zip(u)
        .zip(keep)
        .filter(|(_, &k)| k)
        .map(|((a, u), _)| a * u)
        .sum()
}

/// Compares the custom gradients with central differences of the reference. Output entries
/// where the reference is not finite (at `base`, its values at the inputs, or at any
/// perturbed point of the input being checked) are left out on both sides and counted in
/// [`Discrepancy::skipped`].
fn finite_difference_checks(
    reference: &TensorFn<'_>,
    inputs: &[Tensor],
    cots: &[Cotangent],
    custom_vjps: &[Vec<Vec<f64>>],
    custom: &CustomGraph<'_>,
    base: &[f64],
    opts: &VerifyOptions,
) -> Result<Vec<Discrepancy>> {
    let h = opts.fd_eps;
    let flat_cots: Vec<Vec<f64>> = cots
        .iter()
        .map(|c| c.tensors.iter().flat_map(|t| t.to_vec_f64()).collect())
        .collect();
    let total_in: usize = inputs.iter().map(|t| t.numel()).sum();
    let mut result = Vec::with_capacity(inputs.len());
    for (j, x) in inputs.iter().enumerate() {
        let mut d = Discrepancy::new(format!("input {j} vs finite differences"));
        let n = x.numel();
        let mut keep: Vec<bool> = base.iter().map(|v| v.is_finite()).collect();
        let full = total_in <= opts.fd_max_elements;
        // Full numerical Jacobian column by column, or J·dir for random directions.
        let dirs: Vec<Vec<f64>> = if full {
            (0..n)
                .map(|e| {
                    let mut dir = vec![0.0; n];
                    dir[e] = 1.0;
                    dir
                })
                .collect()
        } else {
            (0..opts.fd_directions)
                .map(|k| {
                    Ok(Tensor::randn(
                        x.dims(),
                        DType::F64,
                        opts.seed.wrapping_add(7919 * (k as u64 + 1) + j as u64),
                    )?
                    .to_vec_f64())
                })
                .collect::<Result<_>>()?
        };
        let mut cols: Vec<Vec<f64>> = Vec::with_capacity(dirs.len());
        for dir in &dirs {
            let p = perturbed(reference, inputs, j, dir, h)?;
            let m = perturbed(reference, inputs, j, dir, -h)?;
            cols.push(central(&p, &m, h, &mut keep));
        }
        d.skipped = keep.iter().filter(|k| !**k).count();
        for (ci, cot) in cots.iter().enumerate() {
            let masked;
            let analytic_all: &[f64] = if d.skipped == 0 {
                &custom_vjps[ci][j]
            } else {
                masked = custom.masked_vjp(cot, &keep, j)?;
                &masked
            };
            if full {
                let numeric: Vec<f64> = cols
                    .iter()
                    .map(|col| masked_dot(col, &flat_cots[ci], &keep))
                    .collect();
                d.compare(
                    analytic_all,
                    &numeric,
                    x.dims(),
                    Some(&cot.name),
                    opts.fd_atol,
                    opts.fd_rtol,
                );
            } else {
                for (k, (col, dir)) in cols.iter().zip(&dirs).enumerate() {
                    let numeric = masked_dot(col, &flat_cots[ci], &keep);
                    let analytic: f64 = analytic_all.iter().zip(dir).map(|(a, v)| a * v).sum();
                    let label = format!("{}, direction {k}", cot.name);
                    d.compare(
                        &[analytic],
                        &[numeric],
                        &[],
                        Some(&label),
                        opts.fd_atol,
                        opts.fd_rtol,
                    );
                }
            }
        }
        result.push(d);
    }
    Ok(result)
}
