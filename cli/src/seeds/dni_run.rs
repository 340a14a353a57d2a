//! Seed 001: Decoupled Neural Interfaces — a synthetic-gradient run.

use std::path::Path;

use super::SeedOutcome;
use crate::dni_demo::{dni_demo, DniDemoReport};
use crate::plot::{line_plot_png, PlotOptions};
use eingrad::Result;

/// Runs the DNI demo: the synthesizer's loss must fall and the updater's gradient formula
/// must hold.
pub fn run(out: Option<&Path>) -> Result<SeedOutcome> {
    let mut s = SeedOutcome::new("001", "Decoupled Neural Interfaces: synthetic gradients");
    let r = dni_demo(300, 0)?;
    s.line(format!("{r}"));
    let (first, last) = DniDemoReport::first_last_tenth(&r.synthesizer_loss);
    s.check(
        last < first,
        format!("synthesizer loss falls: first tenth {first:.4e} -> last tenth {last:.4e}"),
    );
    s.check(
        r.updater_max_abs_err <= 1e-6,
        format!(
            "updater gradients are g and (2/B)(sg - g) (max err {:.1e})",
            r.updater_max_abs_err
        ),
    );
    s.check(
        r.synthesizer_grad_max_abs_err <= 1e-6,
        format!(
            "synthesizer gradients through the updater = autograd of its MSE (max err {:.1e})",
            r.synthesizer_grad_max_abs_err
        ),
    );
    if let Some(dir) = out {
        line_plot_png(
            &dir.join("001_dni_synthesizer_loss.png"),
            &[
                ("synthesizer loss", &r.synthesizer_loss[..]),
                ("task loss", &r.task_loss[..]),
            ],
            &PlotOptions {
                title: "DNI: synthesizer and task loss".into(),
                x_label: "step".into(),
                y_label: "loss".into(),
                log_y: true,
            },
        )?;
    }
    Ok(s)
}
