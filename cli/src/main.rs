//! The `eingrad` command line: run the seed experiments, inspect einsum contractions and their
//! derivatives.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Parser, Subcommand};
use eingrad_cli::einsum_cmd::{einsum_command, EinsumArgs};
use eingrad_cli::eval_cmd::{eval_command, sample_command, EvalArgs, SampleArgs};
use eingrad_cli::train::{train_command, TrainArgs, TrainModel};
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
  eingrad train gpt --out out-gpt
  eingrad eval out-gpt --text \"To be, or not to be\"
  eingrad sample out-gpt --prompt \"ROMEO:\" --tokens 200

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
    /// Train gpt, mlstm or hourglass on the shipped Shakespeare, or an MLP on the digits by
    /// backprop, DNI and cDNI (dni-digits).
    #[command(
        after_help = "Defaults (gpt): nanoGPT's CPU recipe for shakespeare_char: n_layer 4, \
n_head 4, n_embd 128, block_size 64, batch 12, 2000 steps, no dropout, no bias, AdamW lr 1e-3 \
betas (0.9, 0.99), weight decay 0.1 on matrices only, gradient clip 1.0, warmup 100 steps then \
cosine decay to 1e-4 at step 2000; loss estimates (20 batches of train and val) every 250 steps, \
each followed by a checkpoint. mlstm: the same width, heads and recipe with 7 residual xLSTM mLSTM \
layers (about gpt's parameter count). hourglass: the same width, heads and recipe with blocks \
1/2/1 (pre/shortened/post) and learned (Gumbel) boundaries with prior 0.2.

The run directory (--out) gets model.safetensors (the weights, with n_layer, n_head, n_embd, \
block_size, vocab_size, bias and vocab in the metadata; nanoGPT's names for gpt), \
optimizer.safetensors (AdamW's state, the step, the batch RNG and the loss history) and loss.png. \
Ctrl-C checkpoints at the end of the current step and exits; --resume DIR continues bit for bit.

Examples:
  eingrad train gpt --out out-gpt
      nanoGPT's CPU recipe (about 0.8M parameters, 2000 steps)
  eingrad train gpt --resume out-gpt --steps 3000
      continue a run (its settings are kept; --steps sets a new total)
  eingrad train mlstm --out out-mlstm
  eingrad train hourglass --boundaries fixed:4 --out out-hourglass
  eingrad train gpt --n-layer 2 --n-head 2 --n-embd 32 --block-size 32 --steps 100 --out tiny
  eingrad train dni-digits --out out-digits
      backprop, DNI and cDNI on the digits; prints each one's test accuracy"
    )]
    Train {
        /// What to train.
        #[arg(value_enum)]
        model: TrainModel,
        #[command(flatten)]
        args: Box<TrainArgs>,
    },
    /// Print a checkpoint's loss (nats per character) on a text, or on the validation split.
    #[command(
        after_help = "CKPT is a run directory or a model .safetensors file (for example one \
PyTorch wrote from nanoGPT's GPT with save_file(state_dict, path, metadata), with n_layer, n_head, \
n_embd, block_size, vocab_size, bias and vocab in the metadata; lm_head.weight may be left out).

With --text, prints `loss = X`: the mean cross-entropy of predicting text[1..] from text[..n-1]. A \
text of more than block_size + 1 characters is scored in consecutive windows of block_size \
predictions, each seeing only its own window (nanoGPT's model takes at most block_size positions; \
its own evaluation also uses block_size windows); the mean is over all predictions.

Without --text, prints `loss = X` for the whole validation split (the last 10% of --data, default \
the shipped Shakespeare), scored the same way in consecutive windows of block_size.

An hourglass with learned (Gumbel) boundaries samples its boundaries at evaluation too; the noise \
comes from a fixed seed, so the same checkpoint and text always give the same loss.

Examples:
  eingrad eval out-gpt
  eingrad eval out-gpt/model.safetensors --text \"First Citizen:\""
    )]
    Eval {
        /// A run directory or a model .safetensors file.
        checkpoint: PathBuf,
        /// The text to score (at least 2 characters, all in the model's vocabulary).
        #[arg(long)]
        text: Option<String>,
        /// The corpus whose validation split is scored without --text.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Threads for the kernels.
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Generate text from a checkpoint.
    #[command(
        after_help = "The context is cropped to the last block_size characters, as \
nanoGPT's generate. Prints the prompt followed by the generated characters.

Examples:
  eingrad sample out-gpt --prompt \"ROMEO:\" --tokens 300
  eingrad sample out-gpt --prompt \"\n\" --tokens 100 --temperature 0 (greedy)"
    )]
    Sample {
        /// A run directory or a model .safetensors file.
        checkpoint: PathBuf,
        /// The text to continue (every character in the model's vocabulary).
        #[arg(long, default_value = "\n")]
        prompt: String,
        /// Characters to generate.
        #[arg(long, default_value_t = 500)]
        tokens: usize,
        /// Softmax temperature (0: always the most likely character).
        #[arg(long, default_value_t = 0.8)]
        temperature: f64,
        /// Sample only among the k most likely characters.
        #[arg(long)]
        top_k: Option<usize>,
        /// Seed of the draws.
        #[arg(long, default_value_t = 1337)]
        seed: u64,
        /// Threads for the kernels.
        #[arg(long)]
        threads: Option<usize>,
    },
}

/// Installs the Ctrl-C handler: the first Ctrl-C sets the flag (the training loop checkpoints
/// and exits at the end of its step), a second one exits at once (every file is written
/// atomically, so none is left half-written).
fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let _ = ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond Ctrl-C: exiting without a checkpoint");
            std::process::exit(130);
        }
        eprintln!("\nCtrl-C: checkpointing at the end of this step (press again to quit now)");
    });
    flag
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
        Command::Train { model, args } => train_command(model, &args, &stop_flag()),
        Command::Eval {
            checkpoint,
            text,
            data,
            threads,
        } => eval_command(&EvalArgs {
            checkpoint,
            text,
            data,
            threads,
        })
        .map(|s| print!("{s}")),
        Command::Sample {
            checkpoint,
            prompt,
            tokens,
            temperature,
            top_k,
            seed,
            threads,
        } => sample_command(&SampleArgs {
            checkpoint,
            prompt,
            tokens,
            temperature,
            top_k,
            seed,
            threads,
        })
        .map(|s| print!("{s}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
