//! The DNI demo experiment behind `eingrad seeds`' seed 001 (`eingrad_cli::dni_demo`): the
//! synthesizer and the task learn, the updater's gradients match their formulas, runs are
//! seeded, and bad settings name the field at fault.

use eingrad::models::dni::{deferred_backward_count, is_backward_deferred};
use eingrad_cli::dni_demo::{dni_demo, dni_demo_with, DniDemoConfig, DniDemoReport};

fn err_string<T>(r: eingrad::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn assert_state_clean() {
    assert!(!is_backward_deferred());
    assert_eq!(deferred_backward_count(), 0);
}

#[test]
fn bad_settings_name_the_field() {
    assert!(err_string(dni_demo(0, 0)).contains("steps"));
    let cfg = DniDemoConfig {
        hidden_dim: 0,
        ..DniDemoConfig::default()
    };
    assert!(err_string(dni_demo_with(&cfg)).contains("hidden_dim"));
    assert_state_clean();
}

#[test]
fn dni_demo_synthesizer_loss_falls() {
    let start = std::time::Instant::now();
    let r = dni_demo(200, 0).unwrap();
    eprintln!("{r}\n  ({:.3} s)", start.elapsed().as_secs_f64());
    assert_eq!(r.synthesizer_loss.len(), 200);
    assert_eq!(r.task_loss.len(), 200);
    let (s0, s1) = DniDemoReport::first_last_tenth(&r.synthesizer_loss);
    assert!(s1 < s0, "synthesizer loss {s0} -> {s1}");
    let (t0, t1) = DniDemoReport::first_last_tenth(&r.task_loss);
    assert!(t1 < t0, "task loss {t0} -> {t1}");
    // with the label context (the default) the synthetic gradient turns towards the true one
    let (c0, c1) = DniDemoReport::first_last_tenth(&r.gradient_cosine);
    assert!(c1 > c0 && c1 > 0.1, "cosine {c0} -> {c1}");
    assert!(r.updater_max_abs_err < 1e-15, "{}", r.updater_max_abs_err);
    assert!(
        r.synthesizer_grad_max_abs_err < 1e-12,
        "{}",
        r.synthesizer_grad_max_abs_err
    );
    assert!(r.to_string().contains("synthesizer loss"));
    // seeded: the same run twice gives the same numbers
    let again = dni_demo(20, 0).unwrap();
    assert_eq!(again.synthesizer_loss[..], r.synthesizer_loss[..20]);
    assert_state_clean();
}

#[test]
fn dni_demo_without_label_context_also_learns() {
    let cfg = DniDemoConfig {
        steps: 200,
        seed: 3,
        label_context: false,
        ..DniDemoConfig::default()
    };
    let r = dni_demo_with(&cfg).unwrap();
    let (s0, s1) = DniDemoReport::first_last_tenth(&r.synthesizer_loss);
    assert!(s1 < s0, "synthesizer loss {s0} -> {s1}");
    let (t0, t1) = DniDemoReport::first_last_tenth(&r.task_loss);
    assert!(t1 < t0, "task loss {t0} -> {t1}");
    assert!(!r.to_string().contains("cDNI"));
}
