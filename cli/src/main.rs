//! The `eingrad` command line: run the seed experiments, inspect einsum contractions and their
//! derivatives.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use eingrad_cli::einsum_cmd::{einsum_command, EinsumArgs};
use eingrad_cli::CliError;

#[derive(Parser)]
#[command(
    name = "eingrad",
    version,
    about = "Tensors with autograd built around einsum",
    after_help = "Examples:
  eingrad seeds --out seeds-out
  eingrad einsum \"bij,bjk->bik\" --shapes 8x3x4,8x4x5 --grad
  eingrad einsum \"bij,bjk->bik\" --grad

Run `eingrad help <COMMAND>` for a command's options and examples."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Explain an einsum: output shape, contraction plan and FLOPs; --grad: each operand's VJP.
    #[command(after_help = "Examples:
  eingrad einsum \"bij,bjk->bik\" --grad
      the VJP pattern of each operand (no shapes needed)
  eingrad einsum \"bij,bjk->bik\" --shapes 64x128x128,64x128x128 --run
      plan a batched matrix product and time it on random data
  eingrad einsum \"i->ii\" --shapes 3
      a generalised output: a vector embedded on a diagonal
  eingrad einsum \"jk->ijk\" --shapes 3x4 --sizes i=2
      a label only the output has: broadcast, its size from --sizes")]
    Einsum {
        /// The pattern, e.g. "bij,bjk->bik".
        pattern: String,
        /// Operand shapes: dims joined by 'x', operands separated by ',' (e.g.
        /// 64x128x128,64x128x128); 'scalar' for a 0-dim operand. Needed for everything but
        /// --grad.
        #[arg(long)]
        shapes: Option<String>,
        /// Sizes of labels only the output has, e.g. i=3,j=4.
        #[arg(long)]
        sizes: Option<String>,
        /// Also print the VJP pattern of every operand.
        #[arg(long)]
        grad: bool,
        /// Also run the contraction on random f32 data and time it.
        #[arg(long)]
        run: bool,
    },
    /// Run the five seed experiments, print their tables and a pass/fail line for each.
    #[command(after_help = "Example:
  eingrad seeds --out seeds-out
      run all five, writing the Jacobian heatmaps and the DNI loss curve as PNGs to seeds-out/")]
    Seeds {
        /// Also write the Jacobians as PNG heatmaps and the DNI loss curve as a PNG plot here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn seeds_command(out: Option<&Path>) -> Result<(), CliError> {
    let t0 = std::time::Instant::now();
    let outcomes =
        eingrad_cli::seeds::run_all(out).map_err(|e| CliError::failure(e.to_string()))?;
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
        Err(CliError::failure("some seeds failed"))
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
        } => einsum_command(&EinsumArgs {
            pattern,
            shapes,
            sizes,
            grad,
            run,
        })
        .map(|text| print!("{text}")),
        Command::Seeds { out } => seeds_command(out.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
