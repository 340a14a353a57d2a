//! The pieces of the `eingrad` command line, kept out of the library so that crates depending
//! on `eingrad` pull no CLI parser, plotting code or PNG encoder.
//!
//! - [`einsum_cmd`]: `eingrad einsum`: an einsum's plan, output shape and VJP patterns.
//! - [`train`]: `eingrad train gpt|hourglass|dni-digits`: training on the shipped data, with
//!   checkpoints that resume bit for bit.
//! - [`eval_cmd`]: `eingrad eval` and `eingrad sample` on a checkpoint.
//! - [`data`]: the shipped corpus (character vocabulary, split, random windows) and digits.
//! - [`seeds`]: the five seed experiments as runnable reports (`eingrad seeds`).
//! - [`dni_demo`]: the small DNI experiment behind seed 001.
//! - [`plot`]: PNG heatmaps and line plots (a small canvas and bitmap font).
//!
//! ```
//! use eingrad_cli::einsum_cmd::{einsum_command, EinsumArgs};
//! let text = einsum_command(&EinsumArgs {
//!     pattern: "ij,jk->ik".into(),
//!     shapes: Some("2x3,3x4".into()),
//!     grad: true,
//!     ..EinsumArgs::default()
//! })?;
//! assert!(text.contains("output shape: [2, 4]"));
//! assert!(text.contains("operand 0: ik,jk->ij"));
//! # Ok::<(), eingrad_cli::CliError>(())
//! ```

pub mod data;
pub mod dni_demo;
pub mod einsum_cmd;
pub mod eval_cmd;
pub mod plot;
pub mod seeds;
pub mod train;

/// A command's failure: the message to print after `error: ` and the process exit code —
/// 2 for bad input (a usage error, as clap uses), 1 for a command that ran and failed.
///
/// ```
/// use eingrad_cli::CliError;
/// let e = CliError::usage("--shapes: '3*4' is not a dim size");
/// assert_eq!((e.exit_code(), e.to_string().as_str()), (2, "--shapes: '3*4' is not a dim size"));
/// assert_eq!(CliError::failure("some seeds failed").exit_code(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    message: String,
    exit_code: u8,
}

impl CliError {
    /// Bad input: a malformed or inconsistent argument (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            exit_code: 2,
        }
    }

    /// A command that ran and failed (exit code 1).
    pub fn failure(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            exit_code: 1,
        }
    }

    /// The exit code the binary ends with.
    pub fn exit_code(&self) -> u8 {
        self.exit_code
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}
