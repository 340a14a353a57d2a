//! `eingrad einsum`: explain an einsum — its output shape, contraction plan and the VJP pattern
//! of every operand — and optionally run it on random data.
//!
//! The VJP patterns need no sizes, so `--grad` works without `--shapes`; everything else needs
//! the operands' shapes. Bad input is an [`CliError`] that names the argument at fault and,
//! where a typo is likely (`--shapes 3,4` meant `3x4`), says how to write it.
//!
//! ```
//! use eingrad_cli::einsum_cmd::{einsum_command, EinsumArgs};
//! let text = einsum_command(&EinsumArgs {
//!     pattern: "bij,bjk->bik".into(),
//!     grad: true,
//!     ..EinsumArgs::default()
//! })?;
//! assert!(text.contains("operand 1: bik,bij->bjk"));
//! # Ok::<(), eingrad_cli::CliError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use eingrad::einsum::parse::{parse_pattern, term_to_string, Label};
use eingrad::einsum::{einsum_vjp_pattern, EinsumExpr, PlanStrategy};
use eingrad::{DType, Tensor};

use crate::CliError;

/// The arguments of `eingrad einsum`.
///
/// ```
/// use eingrad_cli::einsum_cmd::EinsumArgs;
/// let args = EinsumArgs { pattern: "ij,jk->ik".into(), shapes: Some("2x3,3x4".into()),
///     ..EinsumArgs::default() };
/// assert!(!args.grad && !args.run);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EinsumArgs {
    /// The pattern, e.g. `"bij,bjk->bik"`.
    pub pattern: String,
    /// `--shapes`: operand shapes, dims joined by `x`, operands separated by `,`
    /// (`scalar` or nothing for a 0-dim operand). `None` when not given.
    pub shapes: Option<String>,
    /// `--sizes`: sizes of output-only labels, e.g. `i=3,j=4`.
    pub sizes: Option<String>,
    /// `--grad`: also print every operand's VJP pattern.
    pub grad: bool,
    /// `--run`: also run the contraction on random f32 data and time it.
    pub run: bool,
}

const SHAPES_SYNTAX: &str =
    "dims of one operand are joined by 'x' and operands are separated by ','";

/// Parses `--shapes`: operands separated by `,`, dims joined by `x`; an operand written
/// `scalar` (or left empty) is 0-dim.
///
/// ```
/// use eingrad_cli::einsum_cmd::parse_shapes;
/// assert_eq!(parse_shapes("2x3,3x4").unwrap(), vec![vec![2, 3], vec![3, 4]]);
/// assert_eq!(parse_shapes("scalar,5").unwrap(), vec![vec![], vec![5]]);
/// assert!(parse_shapes("3*4").unwrap_err().to_string().contains("'x'"));
/// ```
pub fn parse_shapes(s: &str) -> Result<Vec<Vec<usize>>, CliError> {
    s.split(',')
        .map(|part| {
            let part = part.trim();
            if part == "scalar" || part.is_empty() {
                return Ok(vec![]);
            }
            part.split(['x', 'X'])
                .map(|d| {
                    let d = d.trim();
                    d.parse::<usize>().map_err(|_| {
                        let place = if d == part {
                            String::new()
                        } else {
                            format!(" in '{part}'")
                        };
                        CliError::usage(format!(
                            "--shapes: '{d}'{place} is not a dim size; {SHAPES_SYNTAX} \
                             (e.g. --shapes 2x3,3x4)"
                        ))
                    })
                })
                .collect()
        })
        .collect()
}

/// Parses `--sizes`: `label=size` pairs separated by `,`.
///
/// ```
/// use eingrad_cli::einsum_cmd::parse_sizes;
/// assert_eq!(parse_sizes("i=3, j=4").unwrap(), vec![('i', 3), ('j', 4)]);
/// assert!(parse_sizes("i:3").unwrap_err().to_string().contains("--sizes"));
/// ```
pub fn parse_sizes(s: &str) -> Result<Vec<(char, usize)>, CliError> {
    if s.trim().is_empty() {
        return Ok(vec![]);
    }
    s.split(',')
        .map(|kv| {
            let bad = |what: String| {
                CliError::usage(format!(
                    "--sizes: {what}; write label=size pairs, e.g. i=3,j=4"
                ))
            };
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| bad(format!("'{}' is not label=size", kv.trim())))?;
            let mut chars = k.trim().chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(bad(format!("'{}' is not a single label", k.trim())));
            };
            if !c.is_ascii_alphabetic() {
                return Err(bad(format!(
                    "'{c}' is not a label (labels are ASCII letters)"
                )));
            }
            let n = v
                .trim()
                .parse()
                .map_err(|_| bad(format!("'{}' is not a size", v.trim())))?;
            Ok((c, n))
        })
        .collect()
}

/// The input terms of `pattern` as the user wrote them (text before `->`, split at `,`).
fn input_terms(pattern: &str) -> Vec<&str> {
    pattern
        .split("->")
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .collect()
}

/// Example `--shapes` for `pattern`: each letter gets its own size (2, 3, 4, …), ellipses none.
fn example_shapes(pattern: &str) -> String {
    let mut sizes: BTreeMap<char, usize> = BTreeMap::new();
    input_terms(pattern)
        .iter()
        .map(|term| {
            let dims: Vec<String> = term
                .chars()
                .filter(char::is_ascii_alphabetic)
                .map(|c| {
                    let next = sizes.len() + 2;
                    sizes.entry(c).or_insert(next).to_string()
                })
                .collect();
            if dims.is_empty() {
                "scalar".to_string()
            } else {
                dims.join("x")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Checks the operand count and ranks of `--shapes` against the pattern's terms, with a hint
/// on the syntax when they disagree (the usual cause is `3,4` written for `3x4`).
fn check_shapes(
    pattern: &str,
    inputs: &[Vec<Label>],
    shapes: &[Vec<usize>],
) -> Result<(), CliError> {
    let hint = || {
        format!(
            "{SHAPES_SYNTAX}, e.g. --shapes {} for \"{pattern}\"",
            example_shapes(pattern)
        )
    };
    if shapes.len() != inputs.len() {
        return Err(CliError::usage(format!(
            "--shapes gives {} ({}) but \"{pattern}\" has {}; {}",
            plural(shapes.len(), "operand shape", "operand shapes"),
            shapes
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            plural(inputs.len(), "input term", "input terms"),
            hint()
        )));
    }
    for (k, (term, shape)) in inputs.iter().zip(shapes).enumerate() {
        let labels = term.iter().filter(|l| **l != Label::Ellipsis).count();
        let has_ellipsis = term.len() > labels;
        let fits = if has_ellipsis {
            shape.len() >= labels
        } else {
            shape.len() == labels
        };
        if !fits {
            return Err(CliError::usage(format!(
                "--shapes: operand {k} has shape {shape:?} ({}) but its term '{}' needs {}{}; \
                 {}",
                plural(shape.len(), "dim", "dims"),
                term_to_string(term),
                if has_ellipsis { "at least " } else { "" },
                plural(labels, "dim", "dims"),
                hint()
            )));
        }
    }
    Ok(())
}

/// Labels of the explicit output that no input has: their sizes must come from `--sizes`.
fn check_output_only_sizes(
    pattern: &str,
    inputs: &[Vec<Label>],
    output: &[Label],
    sizes: &[(char, usize)],
) -> Result<(), CliError> {
    let in_inputs: std::collections::HashSet<&Label> = inputs.iter().flatten().collect();
    let mut missing: Vec<char> = Vec::new();
    for l in output {
        if let Label::Char(c) = l {
            if !in_inputs.contains(l) && !sizes.iter().any(|(s, _)| s == c) && !missing.contains(c)
            {
                missing.push(*c);
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = missing.iter().map(|c| format!("'{c}'")).collect();
    let example: Vec<String> = missing.iter().map(|c| format!("{c}=2")).collect();
    Err(CliError::usage(format!(
        "{} {} only in the output of \"{pattern}\", so no operand gives {}; pass --sizes, e.g. \
         --sizes {}",
        if missing.len() == 1 {
            "label"
        } else {
            "labels"
        },
        names.join(", ")
            + if missing.len() == 1 {
                " appears"
            } else {
                " appear"
            },
        if missing.len() == 1 {
            "its size"
        } else {
            "their sizes"
        },
        example.join(",")
    )))
}

/// Runs `eingrad einsum` and returns what it prints.
///
/// Without `--shapes` only `--grad` works: the VJP patterns need no sizes. Errors name the
/// argument at fault (`--shapes`, `--sizes` or the pattern) and are usage errors (exit code
/// 2), except a failure while running the contraction (exit code 1).
///
/// ```
/// use eingrad_cli::einsum_cmd::{einsum_command, EinsumArgs};
/// let args = |shapes: &str| EinsumArgs { pattern: "ij->ji".into(), shapes: Some(shapes.into()),
///     ..EinsumArgs::default() };
/// assert!(einsum_command(&args("3x4")).unwrap().contains("output shape: [4, 3]"));
/// let err = einsum_command(&args("3,4")).unwrap_err();
/// assert_eq!(err.exit_code(), 2);
/// assert!(err.to_string().contains("--shapes 2x3"));
/// ```
pub fn einsum_command(args: &EinsumArgs) -> Result<String, CliError> {
    let pattern = args.pattern.as_str();
    let n = input_terms(pattern).len();
    let spec = parse_pattern(pattern, n).map_err(|e| CliError::usage(e.to_string()))?;
    let sizes = match &args.sizes {
        Some(s) => parse_sizes(s)?,
        None => vec![],
    };
    let mut text = String::new();
    let vjp_patterns = |text: &mut String| -> Result<(), CliError> {
        let _ = writeln!(
            text,
            "VJP patterns (gradient of each operand from the output gradient):"
        );
        for k in 0..spec.inputs.len() {
            let p = einsum_vjp_pattern(pattern, k).map_err(|e| CliError::usage(e.to_string()))?;
            let _ = writeln!(text, "  operand {k}: {p}");
        }
        Ok(())
    };
    let Some(shapes) = &args.shapes else {
        if args.run {
            return Err(CliError::usage(format!(
                "--run needs --shapes to make random operands, e.g. --shapes {}",
                example_shapes(pattern)
            )));
        }
        if !args.grad {
            return Err(CliError::usage(format!(
                "--shapes is needed to plan \"{pattern}\" ({}), e.g. --shapes {}; \
                 or pass --grad alone to print the VJP patterns, which need no sizes",
                plural(n, "operand", "operands"),
                example_shapes(pattern)
            )));
        }
        vjp_patterns(&mut text)?;
        let _ = writeln!(
            text,
            "(give --shapes, e.g. --shapes {}, for the output shape and the contraction plan)",
            example_shapes(pattern)
        );
        return Ok(text);
    };
    let shapes = parse_shapes(shapes)?;
    check_shapes(pattern, &spec.inputs, &shapes)?;
    if spec.explicit_output {
        check_output_only_sizes(pattern, &spec.inputs, &spec.output, &sizes)?;
    }
    let refs: Vec<&[usize]> = shapes.iter().map(|s| s.as_slice()).collect();
    let expr = EinsumExpr::new(pattern, &refs, &sizes, PlanStrategy::Auto)
        .map_err(|e| CliError::usage(e.to_string()))?;
    let _ = writeln!(text, "output shape: {:?}", expr.output_shape());
    let _ = writeln!(text, "contraction path: {:?}", expr.plan().path.0);
    let _ = writeln!(text, "{}", expr.plan());
    if args.grad {
        vjp_patterns(&mut text)?;
    }
    if args.run {
        let failed = |e: eingrad::Error| CliError::failure(format!("--run: {e}"));
        let ops: Vec<Tensor> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| Tensor::randn(s, DType::F32, i as u64))
            .collect::<eingrad::Result<_>>()
            .map_err(failed)?;
        let r: Vec<&Tensor> = ops.iter().collect();
        let t0 = std::time::Instant::now();
        let out = expr.run(&r).map_err(failed)?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let sum = out.sum_all().and_then(|s| s.item()).map_err(failed)?;
        let _ = writeln!(text, "ran in {ms:.3} ms, output sum {sum:.6e}");
    }
    Ok(text)
}
