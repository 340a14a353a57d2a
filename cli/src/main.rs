//! The `eingrad` command line: inspect einsum contractions and their derivatives.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use eingrad::einsum::{einsum_vjp_pattern, EinsumExpr, PlanStrategy};
use eingrad::{DType, Tensor};

#[derive(Parser)]
#[command(
    name = "eingrad",
    version,
    about = "Tensors with autograd built around einsum"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Plan an einsum: output shape, contraction path, FLOPs, largest intermediate.
    Einsum {
        /// The pattern, e.g. "bij,bjk->bik".
        pattern: String,
        /// Operand shapes, comma-separated, dims joined by 'x' (e.g. 64x128x128,64x128x128);
        /// use 'scalar' for a 0-dim operand.
        #[arg(long, default_value = "")]
        shapes: String,
        /// Sizes of output-only labels, e.g. i=3,j=4.
        #[arg(long, default_value = "")]
        sizes: String,
        /// Also print the VJP pattern of every operand.
        #[arg(long)]
        grad: bool,
        /// Also run the contraction on random f32 data and time it.
        #[arg(long)]
        run: bool,
    },
    /// Run the five seed experiments, print their tables and a pass/fail line for each.
    Seeds {
        /// Also write the Jacobians as PNG heatmaps and the DNI loss curve as a PNG plot here.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

fn parse_shapes(s: &str) -> Result<Vec<Vec<usize>>, String> {
    if s.trim().is_empty() {
        return Ok(vec![]);
    }
    s.split(',')
        .map(|part| {
            let part = part.trim();
            if part == "scalar" || part.is_empty() {
                return Ok(vec![]);
            }
            part.split('x')
                .map(|d| {
                    d.trim()
                        .parse::<usize>()
                        .map_err(|_| format!("--shapes: '{d}' in '{part}' is not a dim size"))
                })
                .collect()
        })
        .collect()
}

fn parse_sizes(s: &str) -> Result<Vec<(char, usize)>, String> {
    if s.trim().is_empty() {
        return Ok(vec![]);
    }
    s.split(',')
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .ok_or(format!("--sizes: '{kv}' is not label=size"))?;
            let mut chars = k.trim().chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(format!("--sizes: '{k}' is not a single label"));
            };
            let n = v
                .trim()
                .parse()
                .map_err(|_| format!("--sizes: '{v}' is not a size"))?;
            Ok((c, n))
        })
        .collect()
}

fn einsum_command(
    pattern: &str,
    shapes: &str,
    sizes: &str,
    grad: bool,
    run: bool,
) -> Result<(), String> {
    let shapes = parse_shapes(shapes)?;
    let sizes = parse_sizes(sizes)?;
    let refs: Vec<&[usize]> = shapes.iter().map(|s| s.as_slice()).collect();
    let expr =
        EinsumExpr::new(pattern, &refs, &sizes, PlanStrategy::Auto).map_err(|e| e.to_string())?;
    println!("output shape: {:?}", expr.output_shape());
    println!("contraction path: {:?}", expr.plan().path.0);
    println!("{}", expr.plan());
    if grad {
        println!("VJP patterns (gradient of each operand from the output gradient):");
        for k in 0..shapes.len() {
            let p = einsum_vjp_pattern(pattern, k).map_err(|e| e.to_string())?;
            println!("  operand {k}: {p}");
        }
    }
    if run {
        let ops: Vec<Tensor> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| Tensor::randn(s, DType::F32, i as u64))
            .collect::<eingrad::Result<_>>()
            .map_err(|e| e.to_string())?;
        let r: Vec<&Tensor> = ops.iter().collect();
        let t0 = std::time::Instant::now();
        let out = expr.run(&r).map_err(|e| e.to_string())?;
        println!(
            "ran in {:.3} ms, output sum {:.6e}",
            t0.elapsed().as_secs_f64() * 1e3,
            out.sum_all()
                .map_err(|e| e.to_string())?
                .item()
                .map_err(|e| e.to_string())?
        );
    }
    Ok(())
}

fn seeds_command(out: Option<&std::path::Path>) -> Result<(), String> {
    let t0 = std::time::Instant::now();
    let outcomes = eingrad_cli::seeds::run_all(out).map_err(|e| e.to_string())?;
    for o in &outcomes {
        println!("=== seed {}: {} ===", o.id, o.title);
        print!("{}", o.report);
        println!();
    }
    for o in &outcomes {
        println!(
            "seed {} {}: {}",
            o.id,
            if o.passed() { "PASS" } else { "FAIL" },
            o.title
        );
        for f in &o.failures {
            println!("    failed: {f}");
        }
    }
    if let Some(dir) = out {
        println!("PNG files written to {}", dir.display());
    }
    println!(
        "{} of {} seeds passed in {:.1} s",
        outcomes.iter().filter(|o| o.passed()).count(),
        outcomes.len(),
        t0.elapsed().as_secs_f64()
    );
    if outcomes.iter().all(|o| o.passed()) {
        Ok(())
    } else {
        Err("some seeds failed".into())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Einsum {
            pattern,
            shapes,
            sizes,
            grad,
            run,
        } => einsum_command(&pattern, &shapes, &sizes, grad, run),
        Command::Seeds { out } => {
            return match seeds_command(out.as_deref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(msg) => {
                    eprintln!("error: {msg}");
                    ExitCode::from(1)
                }
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}
