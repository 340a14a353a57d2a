//! `eingrad train`, `eval` and `sample` (issue #13) on tiny configurations, seconds each: a
//! 30-step run of every model lowers its loss, `--resume` continues bit for bit, Ctrl-C
//! checkpoints and exits 0, the nanoGPT goldens evaluate to PyTorch's loss (both directions),
//! every LM's prefix gets the logits of the full sequence, and bad input is a clear error (exit
//! 2, `error: ...`), never a panic.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use eingrad::io::{load_safetensors, save_safetensors};
use eingrad::models::gpt::{Gpt, GptConfig};
use eingrad::DType;

/// Runs the built binary with `args`; returns (exit code, stdout, stderr).
fn eingrad(args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_eingrad"))
        .args(args)
        .output()
        .expect("the eingrad binary runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Runs `args` and expects success; returns stdout.
fn ok(args: &[&str]) -> String {
    let (code, out, err) = eingrad(args);
    assert_eq!(code, 0, "{args:?}\nstdout: {out}\nstderr: {err}");
    out
}

/// Runs `args`, expects exit code 2 with an `error: ` line and no panic; returns stderr.
fn usage_error(args: &[&str]) -> String {
    let (code, out, err) = eingrad(args);
    assert_eq!(code, 2, "{args:?}\nstdout: {out}\nstderr: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("eingrad-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const TINY: &[&str] = &[
    "--n-head",
    "2",
    "--n-embd",
    "32",
    "--block-size",
    "32",
    "--batch",
    "8",
    "--eval-iters",
    "2",
    "--threads",
    "1",
];

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden/gpt")
        .join(name)
}

/// The val losses of the `step N: ... val loss X` lines.
fn val_losses(out: &str) -> Vec<(u64, f64)> {
    out.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("step ")?;
            let (step, rest) = rest.split_once(':')?;
            let v = rest.split("val loss ").nth(1)?.split_whitespace().next()?;
            Some((step.parse().ok()?, v.parse().ok()?))
        })
        .collect()
}

fn train_and_check_loss_falls(model: &str, extra: &[&str]) {
    let dir = scratch(&format!("falls-{model}-{}", extra.join("")));
    let mut args = vec![
        "train",
        model,
        "--steps",
        "30",
        "--eval-every",
        "15",
        "--lr",
        "3e-3",
    ];
    args.extend_from_slice(TINY);
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", s(&dir)]);
    let out = ok(&args);
    let v = val_losses(&out);
    assert_eq!(
        v.iter().map(|x| x.0).collect::<Vec<_>>(),
        [0, 15, 30],
        "{out}"
    );
    assert!(v[2].1 < v[0].1 - 0.3, "{model}: val loss {v:?}\n{out}");
    for f in ["model.safetensors", "optimizer.safetensors", "loss.png"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    // The checkpoint evaluates and samples.
    let e = ok(&[
        "eval",
        s(&dir),
        "--text",
        "First Citizen:\nBefore we proceed",
    ]);
    assert!(e.starts_with("loss = "), "{e}");
    let smp = ok(&[
        "sample",
        s(&dir),
        "--prompt",
        "ROMEO:",
        "--tokens",
        "20",
        "--seed",
        "3",
    ]);
    assert!(
        smp.starts_with("ROMEO:") && smp.trim_end().chars().count() == 26,
        "{smp:?}"
    );
    assert_eq!(
        smp,
        ok(&[
            "sample",
            s(&dir),
            "--prompt",
            "ROMEO:",
            "--tokens",
            "20",
            "--seed",
            "3"
        ])
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn thirty_steps_of_gpt_lower_the_loss() {
    train_and_check_loss_falls("gpt", &["--n-layer", "2"]);
}

#[test]
fn thirty_steps_of_hourglass_lower_the_loss() {
    train_and_check_loss_falls("hourglass", &["--hourglass-layers", "1,1,1"]);
    train_and_check_loss_falls(
        "hourglass",
        &["--hourglass-layers", "1,1,1", "--boundaries", "fixed:4"],
    );
}

#[test]
fn thirty_steps_of_mlstm_lower_the_loss() {
    train_and_check_loss_falls("mlstm", &["--n-layer", "2"]);
}

#[test]
fn dni_digits_learns_with_backprop_dni_and_cdni() {
    let dir = scratch("digits");
    let out = ok(&[
        "train",
        "dni-digits",
        "--steps",
        "300",
        "--eval-every",
        "150",
        "--n-embd",
        "64",
        "--threads",
        "1",
        "--out",
        s(&dir),
    ]);
    for mode in ["backprop", "dni", "cdni"] {
        let acc: Vec<f64> = out
            .lines()
            .filter(|l| l.starts_with(&format!("{mode} step")))
            .filter_map(|l| {
                l.split("test accuracy ")
                    .nth(1)?
                    .trim_end_matches('%')
                    .parse()
                    .ok()
            })
            .collect();
        assert_eq!(acc.len(), 2, "{out}");
        assert!(acc[1] > 50.0, "{mode}: {acc:?}\n{out}");
    }
    for f in ["models.safetensors", "loss.png", "accuracy.png"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let m = load_safetensors(dir.join("models.safetensors")).unwrap();
    assert!(m.metadata["cdni_test_accuracy"].parse::<f64>().unwrap() > 0.5);
    std::fs::remove_dir_all(dir).unwrap();
}

fn history(dir: &Path) -> Vec<f64> {
    load_safetensors(dir.join("optimizer.safetensors"))
        .unwrap()
        .get("history.train_loss")
        .unwrap()
        .to_vec_f64()
}

fn resume_is_bit_identical(model: &str, extra: &[&str]) {
    let dir = scratch(&format!("resume-{model}"));
    let (a, b) = (dir.join("a"), dir.join("b"));
    let common: Vec<&str> = TINY.iter().chain(extra).copied().collect();
    let run = |more: &[&str]| {
        let mut args = vec!["train", model, "--eval-every", "4"];
        args.extend_from_slice(&common);
        args.extend_from_slice(more);
        ok(&args)
    };
    run(&["--steps", "10", "--out", s(&a)]);
    run(&["--steps", "5", "--lr-decay-steps", "10", "--out", s(&b)]);
    let out = ok(&[
        "train",
        model,
        "--resume",
        s(&b),
        "--steps",
        "10",
        "--threads",
        "1",
    ]);
    assert!(out.contains("training steps 5..10"), "{out}");
    let (ma, mb) = (
        std::fs::read(a.join("model.safetensors")).unwrap(),
        std::fs::read(b.join("model.safetensors")).unwrap(),
    );
    assert!(
        ma == mb,
        "{model}: the resumed weights differ from the uninterrupted run's"
    );
    let (ha, hb) = (history(&a), history(&b));
    assert_eq!(ha.len(), 10);
    assert_eq!(
        ha.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        hb.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
    // A resumed run keeps its settings.
    let e = usage_error(&[
        "train",
        model,
        "--resume",
        s(&b),
        "--steps",
        "12",
        "--lr",
        "0.5",
    ]);
    assert!(e.contains("--lr 0.5 differs"), "{e}");
    let e = usage_error(&["train", model, "--resume", s(&b), "--steps", "10"]);
    assert!(e.contains("already at step 10"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn resume_gpt_equals_the_uninterrupted_run_bit_for_bit() {
    resume_is_bit_identical("gpt", &["--n-layer", "2"]);
}

#[test]
fn resume_hourglass_with_gumbel_noise_equals_the_uninterrupted_run() {
    resume_is_bit_identical("hourglass", &["--hourglass-layers", "1,1,1"]);
}

#[test]
fn resume_mlstm_equals_the_uninterrupted_run_bit_for_bit() {
    resume_is_bit_identical("mlstm", &["--n-layer", "2"]);
}

#[test]
fn ctrl_c_checkpoints_and_exits_cleanly() {
    let dir = scratch("ctrlc");
    let mut args = vec![
        "train",
        "gpt",
        "--n-layer",
        "1",
        "--steps",
        "1000000",
        "--eval-every",
        "0",
        "--out",
        s(&dir),
    ];
    args.extend_from_slice(TINY);
    let mut child = Command::new(env!("CARGO_BIN_EXE_eingrad"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The handler is installed before the run prints its plan.
    for l in lines.by_ref() {
        if l.unwrap().starts_with("training steps") {
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    let rest = rest.join("\n");
    assert_eq!(status.code(), Some(0), "{rest}");
    let step: u64 = rest
        .split("stopped by Ctrl-C at step ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no stop message in {rest}"));
    assert!(step >= 1);
    assert_eq!(history(&dir).len() as u64, step);
    let more = (step + 2).to_string();
    let out = ok(&["train", "gpt", "--resume", s(&dir), "--steps", &more]);
    assert!(
        out.contains(&format!("training steps {step}..{more}")),
        "{out}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// The `loss = X` of `eingrad eval`.
fn eval_loss(path: &Path, text: &str) -> f64 {
    let out = ok(&["eval", s(path), "--text", text]);
    out.lines()
        .next()
        .and_then(|l| l.strip_prefix("loss = "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no loss line in {out}"))
}

#[test]
fn nanogpt_checkpoints_evaluate_to_pytorch_loss_both_ways() {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(golden("expected.json")).unwrap()).unwrap();
    let texts = &expected["texts"];
    // PyTorch-written (with attn.bias buffers and a cloned lm_head; without biases and without
    // lm_head), and eingrad-written (PyTorch's loss after load_state_dict).
    for file in ["gpt_bias", "gpt_nobias", "eingrad_gpt"] {
        for which in ["short", "long"] {
            let want = expected["files"][file][which].as_f64().unwrap();
            let text = texts[which].as_str().unwrap();
            let got = eval_loss(&golden(&format!("{file}.safetensors")), text);
            let rel = (got - want).abs() / want.abs();
            assert!(
                rel < 1e-5,
                "{file} {which}: eingrad {got}, PyTorch {want} (rel {rel:.2e})"
            );
        }
    }
    // The long text says how it was scored.
    let out = ok(&[
        "eval",
        s(&golden("gpt_bias.safetensors")),
        "--text",
        texts["long"].as_str().unwrap(),
    ]);
    assert!(out.contains("7 consecutive windows of at most 16"), "{out}");
}

#[test]
fn eval_without_text_scores_the_validation_split() {
    let out = ok(&[
        "eval",
        s(&golden("eingrad_gpt.safetensors")),
        "--threads",
        "1",
    ]);
    let loss: f64 = out.lines().next().unwrap()["loss = ".len()..]
        .parse()
        .unwrap();
    assert!(loss > 2.0 && loss < 4.4, "{out}");
    assert!(out.contains("110521 characters"), "{out}");
}

#[test]
fn every_prefix_gets_the_logits_of_the_full_sequence() {
    let cfg = GptConfig {
        n_layer: 2,
        n_head: 2,
        n_embd: 16,
        block_size: 12,
        bias: true,
        ..GptConfig::shakespeare_char(20)
    };
    let gpt = Gpt::new(cfg, DType::F64, 3).unwrap();
    let ids: Vec<usize> = (0..12).map(|i| (i * 7 + 3) % 20).collect();
    let full = gpt.logits(&ids, 1, 12).unwrap().to_vec_f64();
    for t in 1..12 {
        let part = gpt.logits(&ids[..t], 1, t).unwrap().to_vec_f64();
        for (a, b) in part.iter().zip(&full[..t * 20]) {
            assert!((a - b).abs() < 1e-12, "prefix {t}: {a} vs {b}");
        }
    }
    // The hourglass (learned boundaries, a fixed noise seed) and the mLSTM as `train` builds
    // them: scoring a text in one window equals the mean of the next-character losses after
    // each of its prefixes (a model that let a position see the next character would score the
    // one window lower).
    for (model, extra) in [
        ("hourglass", ["--hourglass-layers", "1,1,1"]),
        ("mlstm", ["--n-layer", "2"]),
    ] {
        let dir = scratch(&format!("prefix-{model}"));
        let mut args = vec!["train", model, "--steps", "3"];
        args.extend_from_slice(&extra);
        args.extend_from_slice(TINY);
        args.extend_from_slice(&["--out", s(&dir)]);
        ok(&args);
        let lm = eingrad_cli::eval_cmd::load_model(&dir).unwrap();
        let ids = lm
            .spec()
            .vocab
            .encode("To be, or not to be: that is")
            .unwrap();
        let n = ids.len();
        assert_eq!(
            lm.next_logits(&ids, 5).unwrap().len(),
            lm.spec().vocab.len()
        );
        let mut per_prefix = 0.0;
        for t in 1..n {
            let l = lm.next_logits(&ids[..t], 5).unwrap();
            let m = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + l.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
            per_prefix += lse - l[ids[t]];
        }
        let (whole, windows) = lm.text_loss(&ids, 5).unwrap();
        assert_eq!(windows, 1);
        let per_prefix = per_prefix / (n - 1) as f64;
        assert!(
            (whole - per_prefix).abs() < 1e-5,
            "{model}: one pass {whole} vs prefixes {per_prefix}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = scratch("bad");
    let gpt = golden("gpt_bias.safetensors");
    // Characters outside the vocabulary.
    let e = usage_error(&["eval", s(&gpt), "--text", "héllo"]);
    assert!(e.contains("'é'") && e.contains("position 1"), "{e}");
    let e = usage_error(&[
        "sample",
        s(&gpt),
        "--prompt",
        "ROMEO\u{1F600}",
        "--tokens",
        "3",
    ]);
    assert!(e.contains("--prompt") && e.contains("position 5"), "{e}");
    let e = usage_error(&["eval", s(&gpt), "--text", "a"]);
    assert!(e.contains("at least 2 characters"), "{e}");

    // A mis-shaped tensor, a missing one, a foreign architecture, a corrupt file.
    let f = load_safetensors(&gpt).unwrap();
    let mut tensors = f.tensors.clone();
    let i = tensors
        .iter()
        .position(|(n, _)| n == "transformer.h.1.mlp.c_fc.weight")
        .unwrap();
    tensors[i].1 = tensors[i].1.reshape(&[32, 32]).unwrap();
    let bad = dir.join("misshaped.safetensors");
    save_safetensors(&bad, &tensors, &f.metadata).unwrap();
    let e = usage_error(&["eval", s(&bad), "--text", "ab"]);
    assert!(
        e.contains("transformer.h.1.mlp.c_fc.weight") && e.contains("[32, 32]"),
        "{e}"
    );
    tensors.remove(i);
    save_safetensors(&bad, &tensors, &f.metadata).unwrap();
    let e = usage_error(&["eval", s(&bad), "--text", "ab"]);
    assert!(
        e.contains("missing keys") && e.contains("mlp.c_fc.weight"),
        "{e}"
    );
    let mut meta = f.metadata.clone();
    meta.insert("model".into(), "hourglass".into());
    save_safetensors(&bad, &f.tensors, &meta).unwrap();
    let e = usage_error(&["eval", s(&bad), "--text", "ab"]);
    assert!(e.contains("pre_layers"), "{e}");
    meta.insert("model".into(), "resnet".into());
    save_safetensors(&bad, &f.tensors, &meta).unwrap();
    let e = usage_error(&["eval", s(&bad), "--text", "ab"]);
    assert!(e.contains("`model` = \"resnet\""), "{e}");
    let bytes = std::fs::read(&gpt).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let e = usage_error(&["eval", s(&bad), "--text", "ab"]);
    assert!(e.contains("misshaped.safetensors"), "{e}");
    let e = usage_error(&["eval", s(&dir.join("nope")), "--text", "ab"]);
    assert!(e.contains("no such file"), "{e}");

    // --resume: missing, not a run directory, model without optimizer, another architecture.
    let e = usage_error(&["train", "gpt", "--resume", s(&dir.join("nope"))]);
    assert!(e.contains("no such directory"), "{e}");
    let e = usage_error(&["train", "gpt", "--resume", s(&dir)]);
    assert!(e.contains("holds no model.safetensors"), "{e}");
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::copy(&gpt, run.join("model.safetensors")).unwrap();
    let e = usage_error(&["train", "gpt", "--resume", s(&run)]);
    assert!(e.contains("no optimizer.safetensors"), "{e}");
    let e = usage_error(&["train", "hourglass", "--resume", s(&run)]);
    assert!(e.contains("holds a gpt model, not hourglass"), "{e}");

    // An unwritable --out (a path under a regular file), corrupt data files.
    let file = dir.join("file.txt");
    std::fs::write(&file, "x").unwrap();
    let e = usage_error(&[
        "train",
        "gpt",
        "--steps",
        "1",
        "--out",
        s(&file.join("sub")),
    ]);
    assert!(e.contains("--out") && e.contains("cannot create"), "{e}");
    std::fs::write(&file, [b'a', 0xff, b'b']).unwrap();
    let e = usage_error(&[
        "train",
        "gpt",
        "--steps",
        "1",
        "--data",
        s(&file),
        "--out",
        s(&dir),
    ]);
    assert!(e.contains("not UTF-8") && e.contains("offset 1"), "{e}");
    std::fs::write(&file, "abcdefghij").unwrap();
    let e = usage_error(&[
        "train",
        "gpt",
        "--steps",
        "1",
        "--data",
        s(&file),
        "--out",
        s(&dir),
    ]);
    assert!(e.contains("too short"), "{e}");
    let e = usage_error(&["train", "dni-digits", "--data", s(&file), "--out", s(&dir)]);
    assert!(e.contains("gzip"), "{e}");
    let e = usage_error(&["eval", s(&gpt), "--data", s(&dir.join("none.txt"))]);
    assert!(e.contains("cannot read"), "{e}");

    // Bad flags.
    let e = usage_error(&["train", "gpt", "--n-head", "3", "--out", s(&dir)]);
    assert!(e.contains("--n-head 3 must divide --n-embd 128"), "{e}");
    let e = usage_error(&[
        "train",
        "hourglass",
        "--boundaries",
        "every:3",
        "--out",
        s(&dir),
    ]);
    assert!(e.contains("fixed:K"), "{e}");
    let e = usage_error(&[
        "train",
        "gpt",
        "--steps",
        "10",
        "--warmup-steps",
        "20",
        "--out",
        s(&dir),
    ]);
    assert!(e.contains("warmup_steps"), "{e}");
    let e = usage_error(&["sample", s(&gpt), "--temperature=-1"]);
    assert!(e.contains("--temperature"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}
