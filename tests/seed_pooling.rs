//! Dynamic token pooling (SEEDS.md §2, seed `000_…`): the seed's facts about the pooling
//! matrix and its surrogate Jacobian, shapes against a naive loop, a no-leak test on a small
//! hourglass language model, gradient checks, the boundary predictor and its binomial prior,
//! and the error messages.

use eingrad::autograd::{grad, GradOptions};
use eingrad::func::{gradcheck, GradcheckOptions};
use eingrad::models::pooling::{
    binomial_prior_loss, downsample, gumbel_sigmoid, lgamma, lgamma_f64, pooling_matrix,
    segment_count, segment_ids, straight_through, upsample, upsampling_matrix, BoundaryPredictor,
};
use eingrad::nn::{Linear, Module};
use eingrad::{einsum, DType, Tensor};

const SEED_B: [f64; 10] = [0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];

fn assert_close(got: &[f64], want: &[f64], atol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= atol,
            "{what}: entry {i}: got {g}, want {w} (atol {atol})"
        );
    }
}

fn seed_boundaries(dtype: DType) -> Tensor {
    Tensor::from_f64s(&SEED_B, &[1, 10], dtype).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Seed facts

#[test]
fn seed_segments_count_and_bar() {
    for dtype in [DType::F32, DType::F64] {
        let b = seed_boundaries(dtype);
        assert_eq!(
            segment_ids(&b).unwrap().to_vec_f64(),
            vec![0.0, 0.0, 0.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0]
        );
        assert_eq!(segment_count(&b).unwrap(), 4);
        let bar = pooling_matrix(&b, 1.0).unwrap();
        assert_eq!(bar.dims(), &[1, 10, 4]);
        // segments {0,1,2}, {3}, {4,5}, {6..9}
        let seg = [0usize, 0, 0, 1, 2, 2, 3, 3, 3, 3];
        let size = [3.0, 1.0, 2.0, 4.0];
        let mut want = vec![0.0; 40];
        for (l, &s) in seg.iter().enumerate() {
            want[l * 4 + s] = 1.0 / size[s];
        }
        assert_close(&bar.to_vec_f64(), &want, 1e-7, "bar");
        // Scaling foo by −2 leaves the forward unchanged.
        let bar2 = pooling_matrix(&b, -2.0).unwrap();
        assert_eq!(bar2.to_vec_f64(), bar.to_vec_f64());
    }
}

/// The 10×10 Jacobian of row l's nonzero (= the row sum) with respect to b, from the blocks
/// in SEEDS.md (zero outside them).
fn seed_jacobian() -> Vec<f64> {
    let blocks: [(usize, Vec<Vec<f64>>); 4] = [
        (
            0,
            vec![
                vec![-2.0 / 9.0, -1.0 / 9.0, 0.0],
                vec![1.0 / 9.0, -1.0 / 9.0, 0.0],
                vec![1.0 / 9.0, 2.0 / 9.0, 0.0],
            ],
        ),
        (3, vec![vec![0.0]]),
        (4, vec![vec![-0.25, 0.0], vec![0.25, 0.0]]),
        (
            6,
            vec![
                vec![-3.0 / 16.0, -2.0 / 16.0, -1.0 / 16.0, 0.0],
                vec![1.0 / 16.0, -2.0 / 16.0, -1.0 / 16.0, 0.0],
                vec![1.0 / 16.0, 2.0 / 16.0, -1.0 / 16.0, 0.0],
                vec![1.0 / 16.0, 2.0 / 16.0, 3.0 / 16.0, 0.0],
            ],
        ),
    ];
    let mut j = vec![0.0; 100];
    for (start, block) in &blocks {
        for (r, row) in block.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                j[(start + r) * 10 + start + c] = v;
            }
        }
    }
    j
}

/// Row l of the Jacobian: the gradient of Σ_s bar[0, l, s] with respect to b.
fn bar_jacobian(dtype: DType, alpha: f64) -> Vec<f64> {
    let mut rows = Vec::new();
    for l in 0..10 {
        let b = seed_boundaries(dtype).requires_grad_(true);
        let bar = pooling_matrix(&b, alpha).unwrap();
        let y = bar.narrow(1, l, 1).unwrap().sum_all().unwrap();
        let g = grad(&[y], &[b], None, GradOptions::default()).unwrap();
        rows.extend(g[0].as_ref().unwrap().to_vec_f64());
    }
    rows
}

#[test]
fn seed_jacobian_blocks() {
    let want = seed_jacobian();
    for dtype in [DType::F64, DType::F32] {
        assert_close(&bar_jacobian(dtype, 1.0), &want, 1e-6, "J");
        let want2: Vec<f64> = want.iter().map(|v| -2.0 * v).collect();
        assert_close(&bar_jacobian(dtype, -2.0), &want2, 1e-6, "J(alpha = -2)");
    }
    // The closed form of SEEDS.md gives the same matrix.
    let seg = [0usize, 0, 0, 1, 2, 2, 3, 3, 3, 3];
    let members = |s: usize| (0..10).filter(move |&l| seg[l] == s);
    let mut closed = vec![0.0; 100];
    for l in 0..10 {
        let n = members(seg[l]).count() as f64;
        let last = members(seg[l]).max().unwrap();
        for m in members(seg[l]).filter(|&m| m != last) {
            let later = members(seg[l]).filter(|&lp| lp > m).count() as f64;
            closed[l * 10 + m] = if m < l { 1.0 / n } else { 0.0 } - later / (n * n);
        }
    }
    assert_close(&closed, &want, 1e-15, "closed form");
}

#[test]
fn masked_entries_pass_no_gradient() {
    // An entry of bar that is zero (token outside segment s) must have no gradient at all.
    let b = seed_boundaries(DType::F64).requires_grad_(true);
    let bar = pooling_matrix(&b, 1.0).unwrap();
    // Column 3 restricted to rows 0..6 is all zeros.
    let y = bar
        .narrow(1, 0, 6)
        .unwrap()
        .narrow(2, 3, 1)
        .unwrap()
        .sum_all()
        .unwrap();
    let g = grad(&[y], &[b], None, GradOptions::default()).unwrap();
    assert_eq!(g[0].as_ref().unwrap().to_vec_f64(), vec![0.0; 10]);
}

// ---------------------------------------------------------------------------------------------
// Shapes and values against a naive loop

/// A deterministic 0/1 pattern.
fn pattern(b: usize, l: usize, seed: u64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..b * l)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            if (s >> 33).is_multiple_of(3) {
                1.0
            } else {
                0.0
            }
        })
        .collect()
}

#[test]
fn downsample_and_upsample_match_a_naive_loop() {
    let (bsz, l, d) = (3, 9, 5);
    let bv = pattern(bsz, l, 4);
    let b = Tensor::from_f64s(&bv, &[bsz, l], DType::F64).unwrap();
    let n = (0..bsz)
        .map(|r| bv[r * l..(r + 1) * l].iter().sum::<f64>() as usize)
        .max()
        .unwrap();
    assert!(n >= 2);
    let x = Tensor::randn(&[bsz, l, d], DType::F64, 1).unwrap();
    let null = Tensor::randn(&[d], DType::F64, 2).unwrap();
    let xs = x.to_vec_f64();
    let nv = null.to_vec_f64();

    let short = downsample(&b, &x, &null).unwrap();
    assert_eq!(short.dims(), &[bsz, n + 1, d]);
    let mut want = vec![0.0; bsz * (n + 1) * d];
    for r in 0..bsz {
        want[r * (n + 1) * d..r * (n + 1) * d + d].copy_from_slice(&nv);
        // Row `seg + 1` of batch r is the mean of tokens `members` of that row.
        let write_mean = |want: &mut [f64], seg: usize, members: &[usize]| {
            for k in 0..d {
                let mean = members
                    .iter()
                    .map(|&m| xs[(r * l + m) * d + k])
                    .sum::<f64>()
                    / members.len() as f64;
                want[(r * (n + 1) + seg + 1) * d + k] = mean;
            }
        };
        let (mut seg, mut members) = (0usize, Vec::new());
        for t in 0..l {
            members.push(t);
            if bv[r * l + t] == 1.0 {
                write_mean(&mut want, seg, &members);
                seg += 1;
                members.clear();
            }
        }
        // As in the source: a row with fewer than n boundaries pools its trailing tokens
        // into one more row (which upsampling never reads); with n boundaries they are dropped.
        if seg < n && !members.is_empty() {
            write_mean(&mut want, seg, &members);
        }
    }
    assert_close(&short.to_vec_f64(), &want, 1e-8, "downsample");

    let up = upsample(&b, &short).unwrap();
    assert_eq!(up.dims(), &[bsz, l, d]);
    let sv = short.to_vec_f64();
    let mut want = vec![0.0; bsz * l * d];
    for r in 0..bsz {
        let mut c = 0;
        for t in 0..l {
            c += bv[r * l + t] as usize;
            for k in 0..d {
                want[(r * l + t) * d + k] = sv[(r * (n + 1) + c) * d + k];
            }
        }
    }
    assert_close(&up.to_vec_f64(), &want, 1e-8, "upsample");
    assert_eq!(upsampling_matrix(&b).unwrap().dims(), &[bsz, l, n + 1]);
}

#[test]
fn source_layout_converts_by_permute() {
    // The source keeps hidden states L × B × D; ours are B × L × D.
    let b = Tensor::from_f64s(&pattern(2, 6, 9), &[2, 6], DType::F64).unwrap();
    let x_lbd = Tensor::randn(&[6, 2, 3], DType::F64, 3).unwrap();
    let null = Tensor::zeros(&[1, 1, 3], DType::F64).unwrap();
    let ours = downsample(&b, &x_lbd.permute(&[1, 0, 2]).unwrap(), &null).unwrap();
    let bar = pooling_matrix(&b, 1.0).unwrap();
    let theirs = einsum("lbd,bls->sbd", &[&x_lbd, &bar]).unwrap();
    let n = bar.dims()[2];
    assert_close(
        &ours
            .narrow(1, 1, n)
            .unwrap()
            .permute(&[1, 0, 2])
            .unwrap()
            .to_vec_f64(),
        &theirs.to_vec_f64(),
        1e-12,
        "layout",
    );
}

// ---------------------------------------------------------------------------------------------
// No leak: a small hourglass LM

struct Hourglass {
    embed: Tensor,
    pre_attn: [Linear; 3],
    pre_ff: Linear,
    null: Tensor,
    short_attn: [Linear; 3],
    short_ff: Linear,
    post_ff: Linear,
    vocab: Linear,
}

/// Causal single-head self-attention with a residual: x + softmax(mask(QKᵀ/√D))V.
fn causal_attention(x: &Tensor, w: &[Linear; 3]) -> Tensor {
    let (q, k, v) = (
        w[0].forward(x).unwrap(),
        w[1].forward(x).unwrap(),
        w[2].forward(x).unwrap(),
    );
    let (l, d) = (x.dims()[1], x.dims()[2]);
    let scores = einsum("bid,bjd->bij", &[&q, &k])
        .unwrap()
        .div_scalar((d as f64).sqrt())
        .unwrap();
    let lower: Vec<f64> = (0..l * l)
        .map(|p| if p % l <= p / l { 1.0 } else { 0.0 })
        .collect();
    let lower = Tensor::from_f64s(&lower, &[l, l], x.dtype()).unwrap();
    let masked = Tensor::where_(
        &lower,
        &scores,
        &Tensor::full(&[], f64::NEG_INFINITY, x.dtype()).unwrap(),
    )
    .unwrap();
    let att = masked.softmax(-1).unwrap();
    x.add(&einsum("bij,bjd->bid", &[&att, &v]).unwrap())
        .unwrap()
}

impl Hourglass {
    fn new(vocab: usize, d: usize) -> Hourglass {
        let lin = |seed| Linear::new(d, d, true, DType::F64, seed).unwrap();
        Hourglass {
            embed: Tensor::randn(&[vocab, d], DType::F64, 100).unwrap(),
            pre_attn: [lin(1), lin(2), lin(3)],
            pre_ff: lin(4),
            null: Tensor::randn(&[1, 1, d], DType::F64, 101).unwrap(),
            short_attn: [lin(5), lin(6), lin(7)],
            short_ff: lin(8),
            post_ff: lin(9),
            vocab: Linear::new(d, vocab, true, DType::F64, 10).unwrap(),
        }
    }

    /// Logits `1 × L × V` for one sequence of tokens with the given boundaries.
    fn logits(&self, tokens: &[usize], boundaries: &[f64]) -> Tensor {
        let l = tokens.len();
        let d = self.embed.dims()[1];
        let x = self
            .embed
            .index_select(0, tokens)
            .unwrap()
            .reshape(&[1, l, d])
            .unwrap();
        // pre layers
        let x = causal_attention(&x, &self.pre_attn);
        let x = self.pre_ff.forward(&x).unwrap().tanh().unwrap();
        let residual = x.clone();
        // shorten
        let b = Tensor::from_f64s(boundaries, &[1, l], DType::F64).unwrap();
        let s = downsample(&b, &x, &self.null).unwrap();
        let s = causal_attention(&s, &self.short_attn);
        let s = self.short_ff.forward(&s).unwrap().tanh().unwrap();
        // back to full length
        let x = upsample(&b, &s).unwrap().add(&residual).unwrap();
        let x = self.post_ff.forward(&x).unwrap().tanh().unwrap();
        self.vocab.forward(&x).unwrap()
    }
}

#[test]
fn hourglass_has_no_leak() {
    let (vocab, d, l) = (11, 8, 32);
    let model = Hourglass::new(vocab, d);
    let tokens: Vec<usize> = (0..l).map(|t| (t * 7 + 3) % vocab).collect();
    // A boundary every 2 tokens: tokens 1, 3, 5, … end segments.
    let boundaries: Vec<f64> = (0..l).map(|t| (t % 2) as f64).collect();
    let full = model.logits(&tokens, &boundaries);
    assert_eq!(full.dims(), &[1, l, vocab]);
    let fv = full.to_vec_f64();
    for p in 1..=l {
        let pre = model.logits(&tokens[..p], &boundaries[..p]);
        assert_close(
            &pre.to_vec_f64(),
            &fv[..p * vocab],
            1e-6,
            &format!("prefix of length {p}"),
        );
    }
    // The test is not vacuous: a token changes its own logits and later ones.
    let mut other = tokens.clone();
    other[20] = (other[20] + 1) % vocab;
    let ov = model.logits(&other, &boundaries).to_vec_f64();
    assert_close(
        &ov[..20 * vocab],
        &fv[..20 * vocab],
        1e-12,
        "before the change",
    );
    let diff: f64 = ov[20 * vocab..]
        .iter()
        .zip(&fv[20 * vocab..])
        .map(|(a, b)| (a - b).abs())
        .sum();
    assert!(diff > 1e-6, "changing token 20 changed nothing after it");
}

#[test]
fn upsampling_by_the_segment_a_token_is_in_would_leak() {
    let b = Tensor::from_f64s(&[0.0, 1.0, 0.0, 1.0], &[1, 4], DType::F64).unwrap();
    let x = Tensor::from_f64s(&[1.0, 3.0, 5.0, 7.0], &[1, 4, 1], DType::F64)
        .unwrap()
        .requires_grad_(true);
    let null = Tensor::zeros(&[1], DType::F64).unwrap();
    let s = downsample(&b, &x, &null).unwrap();
    assert_close(&s.to_vec_f64(), &[0.0, 2.0, 6.0], 1e-8, "segments");
    // Ours: token 0 sees the null group, token 1 (end of segment 0) its own segment.
    let up = upsample(&b, &s).unwrap();
    assert_close(&up.to_vec_f64(), &[0.0, 2.0, 2.0, 6.0], 1e-8, "upsample");
    let dep = |y: Tensor| {
        grad(
            &[y],
            std::slice::from_ref(&x),
            None,
            GradOptions::default().retain_graph(true),
        )
        .unwrap()[0]
            .clone()
            .unwrap()
            .to_vec_f64()
    };
    // Token 0 depends on no token; token 2 only on tokens 0 and 1.
    assert_eq!(
        dep(up.narrow(1, 0, 1).unwrap().sum_all().unwrap()),
        vec![0.0; 4]
    );
    let g2 = dep(up.narrow(1, 2, 1).unwrap().sum_all().unwrap());
    assert!(
        g2[0] > 0.0 && g2[1] > 0.0 && g2[2] == 0.0 && g2[3] == 0.0,
        "{g2:?}"
    );
    // The counter-check: handing token l the segment it belongs to (row h_l of the pooled
    // means, the transpose of the pooling matrix) lets token 0 see token 1 — a leak.
    let bar = pooling_matrix(&b, 1.0).unwrap();
    let pooled = s.narrow(1, 1, 2).unwrap();
    let leaky = einsum("bsd,bls->bld", &[&pooled, &bar]).unwrap();
    let g0 = dep(leaky.narrow(1, 0, 1).unwrap().sum_all().unwrap());
    assert!(g0[1] > 0.0, "{g0:?}");
}

// ---------------------------------------------------------------------------------------------
// Gradient checks (f64)

#[test]
fn gradcheck_downsample_and_upsample_in_hidden() {
    let (bsz, l, d) = (2, 7, 3);
    let b = Tensor::from_f64s(&pattern(bsz, l, 11), &[bsz, l], DType::F64).unwrap();
    let n = segment_count(&b).unwrap();
    let x = Tensor::randn(&[bsz, l, d], DType::F64, 5).unwrap();
    let null = Tensor::randn(&[d], DType::F64, 6).unwrap();
    let bd = b.clone();
    let down = move |xs: &[Tensor]| Ok(vec![downsample(&bd, &xs[0], &xs[1])?]);
    let r = gradcheck(&down, &[x, null], GradcheckOptions::default()).unwrap();
    assert!(r.passed, "downsample: {}", r.worst);

    let short = Tensor::randn(&[bsz, n + 1, d], DType::F64, 7).unwrap();
    let bu = b.clone();
    let up = move |xs: &[Tensor]| Ok(vec![upsample(&bu, &xs[0])?]);
    let r = gradcheck(&up, &[short], GradcheckOptions::default()).unwrap();
    assert!(r.passed, "upsample: {}", r.worst);

    // Through both, as the hourglass uses them.
    let x = Tensor::randn(&[bsz, l, d], DType::F64, 8).unwrap();
    let null = Tensor::randn(&[d], DType::F64, 9).unwrap();
    let both = move |xs: &[Tensor]| {
        let s = downsample(&b, &xs[0], &xs[1])?.tanh()?;
        Ok(vec![upsample(&b, &s)?.mul(&xs[0])?])
    };
    let r = gradcheck(&both, &[x, null], GradcheckOptions::default()).unwrap();
    assert!(r.passed, "down+up: {}", r.worst);
}

#[test]
fn boundaries_receive_the_surrogate_gradient_through_downsample() {
    // d/db of Σ_s Σ_d w[s,d]·pooled[s,d] = Σ_l Σ_s (w_s·x_l) ∂bar[l,s]/∂b: check against the
    // seed Jacobian with one hidden feature x_l = 1 (so pooled = Σ_l bar[l,s], every row sums to 1).
    let b = seed_boundaries(DType::F64).requires_grad_(true);
    let x = Tensor::ones(&[1, 10, 1], DType::F64).unwrap();
    let null = Tensor::zeros(&[1], DType::F64).unwrap();
    let y = downsample(&b, &x, &null).unwrap().sum_all().unwrap();
    let g = grad(&[y], &[b], None, GradOptions::default()).unwrap()[0]
        .clone()
        .unwrap();
    // Column sums of the seed Jacobian.
    let j = seed_jacobian();
    let want: Vec<f64> = (0..10)
        .map(|m| (0..10).map(|l| j[l * 10 + m]).sum())
        .collect();
    assert_close(&g.to_vec_f64(), &want, 1e-6, "db");
}

// ---------------------------------------------------------------------------------------------
// Boundary predictor, Gumbel-sigmoid, binomial prior, lgamma

#[test]
fn lgamma_values_and_digamma_gradient() {
    // torch.lgamma and its gradient (digamma), float64:
    //   x = torch.tensor([1.0, 2.5, 10.0, 37.3], dtype=torch.float64, requires_grad=True)
    //   y = torch.lgamma(x); y.sum().backward(); print(y.tolist(), x.grad.tolist())
    let xs = [1.0, 2.5, 10.0, 37.3];
    let want_y = [
        0.0,
        0.2846828704729192,
        12.801827480081469,
        96.80012703802329,
    ];
    let want_g = [
        -0.5772156649015328,
        0.7031566406452431,
        2.251752589066721,
        3.6055286087651184,
    ];
    let x = Tensor::from_f64s(&xs, &[4], DType::F64)
        .unwrap()
        .requires_grad_(true);
    let y = lgamma(&x).unwrap();
    assert_close(&y.to_vec_f64(), &want_y, 1e-12, "lgamma");
    for (v, w) in xs.iter().zip(&want_y) {
        assert!((lgamma_f64(*v) - w).abs() < 1e-12);
    }
    y.sum_all().unwrap().backward().unwrap();
    assert_close(&x.grad().unwrap().to_vec_f64(), &want_g, 1e-12, "digamma");
    let r = gradcheck(
        &|xs: &[Tensor]| Ok(vec![lgamma(&xs[0])?]),
        &[Tensor::from_f64s(&[0.75, 3.2, 12.0], &[3], DType::F64).unwrap()],
        GradcheckOptions::default(),
    )
    .unwrap();
    assert!(r.passed, "{}", r.worst);
}

#[test]
fn binomial_prior_matches_torch() {
    // k = torch.tensor([3., 5., 0.], dtype=torch.float64, requires_grad=True); T = 10
    // b = torch.distributions.binomial.Binomial(T, probs=torch.tensor([0.2], dtype=torch.float64))
    // loss = -b.log_prob(k).mean() / T; loss.backward(); print(loss.item(), k.grad.tolist())
    let want_loss = 0.24892468660306483;
    let want_grad = [
        0.020892351719869362,
        0.046209812037329684,
        -0.051422463094945456,
    ];
    // Rows of 10 with 3, 5 and 0 ones; the count's gradient reaches every entry of its row.
    let mut hard = vec![0.0; 30];
    hard[..3].fill(1.0);
    for t in 0..5 {
        hard[10 + 2 * t] = 1.0;
    }
    let h = Tensor::from_f64s(&hard, &[3, 10], DType::F64)
        .unwrap()
        .requires_grad_(true);
    let loss = binomial_prior_loss(&h, 0.2).unwrap();
    assert!((loss.item().unwrap() - want_loss).abs() < 1e-12);
    loss.backward().unwrap();
    let g = h.grad().unwrap().to_vec_f64();
    for r in 0..3 {
        assert_close(
            &g[r * 10..(r + 1) * 10],
            &[want_grad[r]; 10],
            1e-12,
            "dloss/dhard",
        );
    }
}

#[test]
fn gumbel_sigmoid_is_seeded_and_straight_through() {
    let logits = Tensor::randn(&[2, 16], DType::F64, 3)
        .unwrap()
        .requires_grad_(true);
    let (soft, hard) = gumbel_sigmoid(&logits, 0.5, 0.5, 42).unwrap();
    let (soft2, hard2) = gumbel_sigmoid(&logits, 0.5, 0.5, 42).unwrap();
    assert_eq!(soft.to_vec_f64(), soft2.to_vec_f64());
    assert_eq!(hard.to_vec_f64(), hard2.to_vec_f64());
    // soft = σ((z + log u − log(1 − u)) / τ) with u = Tensor::rand(shape, dtype, seed).
    let u = Tensor::rand(&[2, 16], DType::F64, 42).unwrap().to_vec_f64();
    let z = logits.to_vec_f64();
    let want: Vec<f64> = z
        .iter()
        .zip(&u)
        .map(|(z, u)| 1.0 / (1.0 + (-(z + u.ln() - (1.0 - u).ln()) / 0.5).exp()))
        .collect();
    assert_close(&soft.to_vec_f64(), &want, 1e-12, "soft");
    let hv = hard.to_vec_f64();
    for (h, s) in hv.iter().zip(soft.to_vec_f64()) {
        assert_eq!(*h, if s > 0.5 { 1.0 } else { 0.0 });
    }
    assert!(hv.contains(&0.0) && hv.contains(&1.0));
    // Straight-through: d hard / d soft = 1.
    let w = Tensor::randn(&[2, 16], DType::F64, 4).unwrap();
    let g_hard = grad(
        &[hard.mul(&w).unwrap().sum_all().unwrap()],
        std::slice::from_ref(&logits),
        None,
        GradOptions::default().retain_graph(true),
    )
    .unwrap()[0]
        .clone()
        .unwrap();
    let g_soft = grad(
        &[soft.mul(&w).unwrap().sum_all().unwrap()],
        &[logits],
        None,
        GradOptions::default(),
    )
    .unwrap()[0]
        .clone()
        .unwrap();
    assert_close(
        &g_hard.to_vec_f64(),
        &g_soft.to_vec_f64(),
        1e-15,
        "straight-through",
    );
    // Another seed, other noise.
    let (soft3, _) = gumbel_sigmoid(&soft.detach(), 0.5, 0.5, 43).unwrap();
    assert_ne!(soft3.to_vec_f64(), soft.to_vec_f64());
    // Exact zeros and ones for any threshold (no rounding from hard − soft + soft).
    let s = Tensor::rand(&[1000], DType::F32, 5).unwrap();
    for th in [0.1, 0.3, 0.5, 0.77] {
        let h = straight_through(&s, th).unwrap().to_vec_f64();
        assert!(h.iter().all(|&v| v == 0.0 || v == 1.0));
    }
}

#[test]
fn boundary_predictor_trains_end_to_end() {
    let (bsz, l, d) = (2, 12, 6);
    let bp = BoundaryPredictor::new(d, 16, 0.2, DType::F64, 1).unwrap();
    assert_eq!(bp.temperature(), 0.5);
    assert_eq!(bp.parameters().len(), 4);
    assert_eq!(bp.hidden_layer().out_features(), 16);
    let x = Tensor::randn(&[bsz, l, d], DType::F64, 2)
        .unwrap()
        .requires_grad_(true);
    let probs = bp.forward(&x).unwrap();
    assert_eq!(probs.dims(), &[bsz, l]);
    assert!(probs.to_vec_f64().iter().all(|&p| p > 0.0 && p < 1.0));
    let s = bp.sample(&x, 9).unwrap();
    assert_eq!(s.probs.to_vec_f64(), probs.to_vec_f64());
    let null = Tensor::zeros(&[d], DType::F64)
        .unwrap()
        .requires_grad_(true);
    let short = downsample(&s.hard, &x, &null).unwrap();
    let up = upsample(&s.hard, &short).unwrap();
    let loss = up
        .mul(&x)
        .unwrap()
        .sum_all()
        .unwrap()
        .add(&bp.prior_loss(&s.hard).unwrap())
        .unwrap();
    loss.backward().unwrap();
    for p in bp.parameters() {
        let g = p.grad().expect("every predictor parameter gets a gradient");
        assert!(g.to_vec_f64().iter().all(|v| v.is_finite()));
    }
    assert!(bp
        .output_layer()
        .weight()
        .grad()
        .unwrap()
        .to_vec_f64()
        .iter()
        .any(|&v| v != 0.0));
    assert!(x.grad().is_some() && null.grad().is_some());
}

// ---------------------------------------------------------------------------------------------
// Errors

fn err_of<T: std::fmt::Debug>(r: eingrad::Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn bad_inputs_name_the_argument() {
    let x = Tensor::randn(&[1, 4, 3], DType::F64, 0).unwrap();
    let null = Tensor::zeros(&[3], DType::F64).unwrap();
    let good = Tensor::from_f64s(&[0.0, 1.0, 0.0, 1.0], &[1, 4], DType::F64).unwrap();

    let half = Tensor::from_f64s(&[0.0, 0.5, 0.0, 1.0], &[1, 4], DType::F64).unwrap();
    let e = err_of(downsample(&half, &x, &null));
    assert!(
        e.contains("downsample") && e.contains("`boundaries`") && e.contains("0.5"),
        "{e}"
    );
    let e = err_of(upsample(&half, &x));
    assert!(e.contains("upsample") && e.contains("`boundaries`"), "{e}");
    let e = err_of(pooling_matrix(&half, 1.0));
    assert!(e.contains("`boundaries`"), "{e}");
    let e = err_of(pooling_matrix(&good.reshape(&[4]).unwrap(), 1.0));
    assert!(e.contains("`boundaries`") && e.contains("(B, L)"), "{e}");
    let e = err_of(pooling_matrix(&good, 0.0));
    assert!(e.contains("`alpha`"), "{e}");

    let wrong_len = Tensor::randn(&[1, 5, 3], DType::F64, 0).unwrap();
    let e = err_of(downsample(&good, &wrong_len, &null));
    assert!(e.contains("`hidden`") && e.contains("[1, 5, 3]"), "{e}");
    let e = err_of(downsample(&good, &x.reshape(&[4, 3]).unwrap(), &null));
    assert!(e.contains("`hidden`"), "{e}");

    let e = err_of(downsample(
        &good,
        &x,
        &Tensor::zeros(&[4], DType::F64).unwrap(),
    ));
    assert!(e.contains("`null_group`") && e.contains("D = 3"), "{e}");
    let e = err_of(downsample(
        &good,
        &x,
        &Tensor::zeros(&[2, 3], DType::F64).unwrap(),
    ));
    assert!(e.contains("`null_group`"), "{e}");
    let e = err_of(downsample(
        &good,
        &x,
        &Tensor::zeros(&[3], DType::F32).unwrap(),
    ));
    assert!(e.contains("`null_group`") && e.contains("dtype"), "{e}");

    // n = 2 here, so shortened needs 3 rows.
    let e = err_of(upsample(
        &good,
        &Tensor::zeros(&[1, 2, 3], DType::F64).unwrap(),
    ));
    assert!(e.contains("`shortened`") && e.contains("[1, 2, 3]"), "{e}");

    let e = err_of(binomial_prior_loss(&good, 1.5));
    assert!(e.contains("`prior`"), "{e}");
    let e = err_of(
        BoundaryPredictor::new(3, 4, 0.2, DType::F64, 0)
            .unwrap()
            .logits(&null),
    );
    assert!(e.contains("`hidden`"), "{e}");
    let e = err_of(gumbel_sigmoid(&null, 0.0, 0.5, 0));
    assert!(e.contains("`temperature`"), "{e}");
}
