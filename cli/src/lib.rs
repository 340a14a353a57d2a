//! The pieces of the `eingrad` command line, kept out of the library so that crates depending
//! on `eingrad` pull no CLI parser, plotting code or PNG encoder.
//!
//! - [`seeds`]: the five seed experiments as runnable reports (`eingrad seeds`).
//! - [`dni_demo`]: the small DNI experiment behind seed 001.
//! - [`plot`]: PNG heatmaps and line plots (a small canvas and bitmap font).
//!
//! ```
//! let report = eingrad_cli::dni_demo::dni_demo(5, 0)?;
//! assert_eq!(report.task_loss.len(), 5);
//! # Ok::<(), eingrad::Error>(())
//! ```

pub mod dni_demo;
pub mod plot;
pub mod seeds;
