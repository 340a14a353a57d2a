//! Train a small MLP and read its gradients.
//!
//! The task is XOR in two dimensions: a point is class 1 when its coordinates have the same
//! sign. No straight line separates the classes, so the hidden layers have to learn something.
//! Each step is the usual four lines — zero the gradients, forward, `backward`, `step` — and at
//! the end every parameter's `.grad()` (filled in by the last `backward`) is printed with its
//! shape and norm.
//!
//! Run it with `cargo run --release --example train_mlp`.

use eingrad::nn::{cross_entropy, Activation, Mlp, Module, Reduction};
use eingrad::optim::{Adam, AdamConfig, Optimizer};
use eingrad::{DType, Result, Tensor};

/// What a training run measured.
struct Run {
    /// The cross-entropy before each step.
    losses: Vec<f64>,
    /// The fraction of points classified right after training.
    accuracy: f64,
    /// Per parameter: its shape and the norm of its last gradient.
    grads: Vec<(Vec<usize>, f64)>,
}

/// 256 points from N(0, 1)², labelled 1 where x·y > 0.
fn xor_data(seed: u64) -> Result<(Tensor, Vec<usize>)> {
    let x = Tensor::randn(&[256, 2], DType::F32, seed)?;
    let labels = x
        .to_vec_f64()
        .chunks_exact(2)
        .map(|p| usize::from(p[0] * p[1] > 0.0))
        .collect();
    Ok((x, labels))
}

fn train(steps: usize) -> Result<Run> {
    let (x, labels) = xor_data(0)?;
    // 2 inputs → 16 → 16 → 2 logits, tanh between layers, weights seeded from 1.
    let mlp = Mlp::new(&[2, 16, 16, 2], Activation::Tanh, DType::F32, 1)?;
    let config = AdamConfig {
        lr: 0.03,
        ..AdamConfig::default()
    };
    let mut opt = Adam::new(mlp.parameters(), config)?;

    let mut losses = Vec::with_capacity(steps);
    for _ in 0..steps {
        opt.zero_grad();
        let loss = cross_entropy(&mlp.forward(&x)?, &labels, Reduction::Mean)?;
        loss.backward()?; // fills p.grad() for every parameter p
        losses.push(loss.item()?);
        opt.step()?;
    }

    // Reading gradients: after `backward`, each parameter holds its own in `.grad()`.
    let grads = mlp
        .parameters()
        .iter()
        .map(|p| {
            let norm = p.grad().map_or(0.0, |g| {
                g.to_vec_f64().iter().map(|v| v * v).sum::<f64>().sqrt()
            });
            (p.dims().to_vec(), norm)
        })
        .collect();

    let predicted = mlp.forward(&x)?.argmax(1, false)?.values;
    let right = predicted
        .iter()
        .zip(&labels)
        .filter(|(p, l)| p == l)
        .count();
    Ok(Run {
        losses,
        accuracy: right as f64 / labels.len() as f64,
        grads,
    })
}

fn main() -> Result<()> {
    let run = train(300)?;
    for (step, loss) in run.losses.iter().enumerate().step_by(50) {
        println!("step {step:>3}: loss {loss:.4}");
    }
    println!(
        "final loss {:.4}, accuracy {:.1}%",
        run.losses.last().copied().unwrap_or(f64::NAN),
        100.0 * run.accuracy
    );
    println!("gradients of the last step:");
    for (i, (shape, norm)) in run.grads.iter().enumerate() {
        println!("  parameter {i} {shape:?}: |grad| = {norm:.3e}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs() {
        super::main().unwrap();
    }

    #[test]
    fn loss_falls_and_every_parameter_has_a_gradient() {
        let run = super::train(300).unwrap();
        let (first, last) = (run.losses[0], *run.losses.last().unwrap());
        // from chance (ln 2 ≈ 0.69) to well below it
        assert!((first - 2f64.ln()).abs() < 0.1, "first loss {first}");
        assert!(last < 0.1 * first, "loss {first} -> {last}");
        assert!(run.accuracy > 0.9, "accuracy {}", run.accuracy);
        // three layers, a weight and a bias each
        assert_eq!(run.grads.len(), 6);
        assert_eq!(run.grads[0].0, [16, 2]);
        assert!(run.grads.iter().all(|(_, n)| n.is_finite() && *n > 0.0));
    }
}
