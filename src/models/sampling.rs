//! Drawing the next token from a language model's logits.

/// Draws an index from softmax(logits / temperature) restricted to the top k, with the
/// uniform number `u` ∈ [0, 1); greedy (the first maximum) at temperature 0. What every
/// language model's sampling (`Gpt::generate`, the command line's `sample`) draws with.
///
/// ```
/// use eingrad::models::sample_logits;
/// let l = [0.0, 2.0, 1.0];
/// assert_eq!(sample_logits(&l, 0.0, None, 0.99), 1);
/// assert_eq!(sample_logits(&l, 1.0, Some(1), 0.99), 1);
/// assert_eq!(sample_logits(&l, 1.0, None, 0.0), 0);
/// ```
pub fn sample_logits(logits: &[f64], temperature: f64, top_k: Option<usize>, u: f64) -> usize {
    let argmax = logits
        .iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > logits[best] { i } else { best });
    if temperature == 0.0 {
        return argmax;
    }
    let mut cut = f64::NEG_INFINITY;
    if let Some(k) = top_k {
        if k < logits.len() {
            let mut sorted = logits.to_vec();
            sorted.sort_by(|a, b| b.total_cmp(a));
            cut = sorted[k - 1];
        }
    }
    let m = logits[argmax];
    let weights: Vec<f64> = logits
        .iter()
        .map(|&l| {
            if l < cut {
                0.0
            } else {
                ((l - m) / temperature).exp()
            }
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    for (i, w) in weights.iter().enumerate() {
        acc += w / total;
        if u < acc {
            return i;
        }
    }
    argmax
}

#[cfg(test)]
mod tests {
    use super::sample_logits;

    #[test]
    fn draws_follow_temperature_and_top_k() {
        let l = [0.0, 2.0, 1.0];
        assert_eq!(sample_logits(&l, 0.0, None, 0.99), 1);
        assert_eq!(sample_logits(&l, 1.0, Some(1), 0.99), 1);
        assert_eq!(sample_logits(&l, 1.0, None, 0.0), 0);
    }
}
