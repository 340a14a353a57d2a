"""The PyTorch side of `eingrad train hourglass` (the DEFAULT run): the same hourglass transformer
with Gumbel dynamic pooling, on the shipped Shakespeare, with the same batches (the CLI's
SplitMix64 windows, seed 1337), the same schedule, the same objective (cross-entropy plus the
binomial boundary prior) and the same evaluation (the whole validation split in consecutive
windows of 64, as `eingrad eval`).

    OMP_NUM_THREADS=2 ../ref-venv/bin/python benches/peers/train_hourglass_torch.py \
        [--steps 2000] [--threads 2] [--seed 1337] [--init-seed S] [--log-every 250]

Prints a train-loss line every --log-every steps, then
"torch X, N threads: val loss V nats (B bits/char), S steps in W s, T tokens/s".
Written for this project. Only the random draws differ from eingrad (initial weights and the
Gumbel noise come from torch's generator); every size, layer, init distribution and training
choice mirrors the Rust code cited below.

Config (cli/src/train/mod.rs, new_spec and new_settings, with no flags):
  vocab 76 (the sorted distinct characters of data/shakespeare/input.txt), split 90/10
  (cli/src/data.rs CharCorpus::from_text: train = ids[:int(n*0.9)]);
  n_embd 128, n_head 4, block_size 64, bias false, dropout 0;
  hourglass layers 1,2,1 (pre / shortened / post), boundaries gumbel, prior 0.2,
  temperature 0.5 (threshold 0.5: pooling/predictor.rs BoundaryPredictor::from_layers);
  d_inner = 4*n_embd = 512 (hourglass/config.rs HourglassConfig::new), LayerNorm eps 1e-5,
  exact (erf) GELU;
  steps 2000, batch 12 x 64, AdamW lr 1e-3 -> min_lr 1e-4, warmup min(100, steps/10), cosine to
  step `steps` (optim/schedule.rs WarmupCosine::lr_at, nanoGPT's get_lr), betas (0.9, 0.99),
  eps 1e-8, weight decay 0.1 on parameters of rank >= 2 only, 0 on the rest
  (optim/group.rs split_decay_by_rank), global grad-norm clip 1.0 with torch's 1e-6
  (optim/mod.rs clip_grad_norm), seed 1337.

Batches (cli/src/train/mod.rs train_lm, cli/src/data.rs CharCorpus::batch): one SplitMix64
stream seeded derive_seed(seed, 1); per step 12 starts i = rng.below(len(train) - 64),
x = train[i:i+64], y = train[i+1:i+65].

Architecture (src/models/hourglass/lm.rs HourglassLm::new / forward_with, and
src/models/hourglass/mod.rs HourglassStack::new / forward_with), batch first (B x L x d):
  word_emb  Embedding(76, 128), N(0, 1) (PyTorch's default; nn/embedding.rs Embedding::new)
  pos_emb   Embedding(64, 128), N(0, 1), learned absolute positions added to word_emb
            (HourglassLmConfig.block_size = Some(64), set in cli/src/train/model.rs build)
  dropout   p = 0 (identity)
  pre_layers       1 Block ┐
  shortened_layers 2 Block ├ nn/transformer.rs Block via hourglass/mod.rs new_block: pre-LN,
  post_layers      1 Block ┘ x + attn(ln_1(x)), then + mlp(ln_2(x)); LayerNorm(128) without
            bias; causal self-attention with fused c_attn (128 -> 384, no bias), 4 heads of 32,
            scores scaled by 1/sqrt(32), c_proj (128 -> 128, no bias); MLP c_fc (128 -> 512,
            no bias), exact GELU, c_proj (512 -> 128, no bias). Linear init: PyTorch's
            default kaiming-uniform, U(-1/sqrt(in), 1/sqrt(in)) (nn/linear.rs Linear::new);
            no GPT-style N(0, 0.02) or residual scaling.
  boundary_predictor (pooling/predictor.rs BoundaryPredictor): on the pre-layers' output,
            Linear(128 -> 512, bias) -> exact GELU -> Linear(512 -> 1, bias), one logit per
            token (biases even though the blocks have none; default init).
            Gumbel-sigmoid (gumbel_sigmoid): u ~ U(0,1) clamped to [eps, 1-eps] (eps the f32
            machine epsilon), soft = sigmoid((logit + log u - log(1-u)) / 0.5),
            hard = 1[soft > 0.5] exactly, straight-through gradient to soft
            (straight_through). Noise is drawn at evaluation too (eingrad draws it from a
            fixed seed there); there is no deterministic eval mode.
  prior loss (binomial_prior_loss): k_b = sum_l hard[b, l], T = L,
            loss = -mean_b log Binomial(T, 0.2).log_prob(k_b) / T, differentiable in k
            through lgamma; weight 1.
  null_group  a [128] parameter, N(0, 1) (hourglass/mod.rs HourglassStack::new), no decay.
  downsample (pooling/mod.rs downsample, segment_matrix): n = max boundaries in any row of
            the batch; h = cumsum(b) - b; foo[b,l,s] = s - h_l (s < n); v = 1 - foo zeroed
            (masked_fill) where foo != 0; bar = v / (sum_l v + 1e-9);
            short = cat(null_group, einsum(bld,bls->bsd)) -> B x (n+1) x d. Differentiable in
            the boundaries through the cumsum (the seed's surrogate gradient).
  down_ln   LayerNorm(128), no bias, on the shortened sequence.
  shortened layers (causal over the n+1 rows).
  upsample (pooling/mod.rs upsample): c = cumsum(b) (inclusive); foo[b,l,s] = s - c_l
            (s < n+1), v as above, normalised over s (+1e-9);
            up = einsum(bsd,bls->bld); x = up + residual (the pre-layers' output).
  post layers, ln_f LayerNorm(128) no bias, final_cast Linear(128 -> 76) WITH bias
            (untied from word_emb; HourglassLm::new builds it with bias=true).
  Objective: mean next-char cross-entropy + prior loss (lm.rs HourglassLm::loss_with);
  the reported train loss is the cross-entropy alone (model.rs CharLm::loss).
  Parameters: 882,125 (eingrad prints 0.88M).

Evaluation (cli/src/train/model.rs CharLm::text_loss, used by `eingrad eval CKPT`): the
validation split's n = len(val) - 1 predictions in consecutive windows of 64, 32 full windows
per forward, then the remainder window (1,727 windows); mean over all predictions. Gumbel noise
is sampled (as in training); the model has no dropout, so eval() changes nothing else.

Checked against eingrad (2026-12-02): an eingrad checkpoint loads into this model strictly
(35 tensors, same shapes, 882,125 parameters; rename attn.c_attn -> c_attn, attn.c_proj ->
attn_proj, mlp.c_fc -> c_fc, mlp.c_proj -> mlp_proj, boundary_predictor.hidden/output ->
bp_hidden/bp_output); its whole-validation loss here is 2.8999 against `eingrad eval`'s 2.9002
(different noise). Fed eingrad's own Gumbel noise (Tensor::rand with the same seed), the
cross-entropy, prior loss and hard boundaries are identical and every parameter's gradient
agrees to 1e-6 relative.
"""
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from peer_common import (BLOCK, Batches, adamw, arguments, lr_at, set_lr, shakespeare, step,
                         summary, validation_windows)


F32_EPS = float(torch.finfo(torch.float32).eps)


class StraightThrough(torch.autograd.Function):
    """1[soft > threshold] exactly (0.0 or 1.0) forward, identity backward
    (pooling/predictor.rs StraightThrough)."""

    @staticmethod
    def forward(ctx, soft, threshold):
        return (soft > threshold).to(soft.dtype)

    @staticmethod
    def backward(ctx, g):
        return g, None


class Block(nn.Module):
    """nn/transformer.rs Block (pre-LN), as built by hourglass/mod.rs new_block."""

    def __init__(self, C, H, d_inner, bias=False):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C, eps=1e-5, bias=bias)
        self.c_attn = nn.Linear(C, 3 * C, bias=bias)
        self.attn_proj = nn.Linear(C, C, bias=bias)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5, bias=bias)
        self.c_fc = nn.Linear(C, d_inner, bias=bias)
        self.mlp_proj = nn.Linear(d_inner, C, bias=bias)
        self.H = H

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (z.view(B, T, self.H, C // self.H).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


def segment_matrix(b, cols, inclusive, norm_dim):
    """pooling/mod.rs segment_matrix (alpha = 1): the pooling / upsampling matrix, B x L x cols,
    differentiable in the boundaries b (B x L) through the cumulative sum."""
    cum = b.cumsum(1)
    pos = cum if inclusive else cum - b
    s = torch.arange(cols, dtype=b.dtype).view(1, 1, cols)
    offset = s - pos.unsqueeze(-1)
    v = (1.0 - offset).masked_fill(offset != 0, 0.0)
    return v / (v.sum(norm_dim, keepdim=True) + 1e-9)


def downsample(b, x, null_group, n):
    """pooling/mod.rs downsample: null group, then the n segment means -> B x (n+1) x d."""
    B, _, d = x.shape
    null = null_group.view(1, 1, d).expand(B, 1, d)
    if n == 0:
        return null
    bar = segment_matrix(b, n, False, 1)
    return torch.cat([null, torch.einsum("bld,bls->bsd", x, bar)], 1)


def upsample(b, short, n):
    """pooling/mod.rs upsample: token l gets row cumsum(b)_l of the shortened sequence."""
    bar = segment_matrix(b, n + 1, True, 2)
    return torch.einsum("bsd,bls->bld", short, bar)


def binomial_prior_loss(hard, prior):
    """pooling/predictor.rs binomial_prior_loss: -mean_b log Binomial(L, prior)(k_b) / L."""
    t = float(hard.shape[1])
    k = hard.sum(-1)
    log_prob = (math.lgamma(t + 1.0) - torch.lgamma(k + 1.0) - torch.lgamma(t - k + 1.0)
                + k * math.log(prior) + (t - k) * math.log1p(-prior))
    return log_prob.mean() * (-1.0 / t)


class HourglassLm(nn.Module):
    """hourglass/lm.rs HourglassLm around hourglass/mod.rs HourglassStack (Gumbel mode)."""

    def __init__(self, V, T, C=128, H=4, layers=(1, 2, 1), prior=0.2, temperature=0.5,
                 threshold=0.5, bias=False):
        super().__init__()
        d_inner = 4 * C
        self.word_emb = nn.Embedding(V, C)  # N(0, 1)
        self.pos_emb = nn.Embedding(T, C)  # N(0, 1)
        pre, short, post = layers
        self.pre_layers = nn.ModuleList(Block(C, H, d_inner, bias) for _ in range(pre))
        self.bp_hidden = nn.Linear(C, d_inner, bias=True)
        self.bp_output = nn.Linear(d_inner, 1, bias=True)
        self.null_group = nn.Parameter(torch.randn(C))
        self.down_ln = nn.LayerNorm(C, eps=1e-5, bias=bias)
        self.shortened_layers = nn.ModuleList(Block(C, H, d_inner, bias) for _ in range(short))
        self.post_layers = nn.ModuleList(Block(C, H, d_inner, bias) for _ in range(post))
        self.ln_f = nn.LayerNorm(C, eps=1e-5, bias=bias)
        self.final_cast = nn.Linear(C, V, bias=True)
        self.prior, self.temperature, self.threshold = prior, temperature, threshold

    def forward(self, idx):
        """Logits B x L x V, hard boundaries B x L, prior loss (scalar)."""
        L = idx.shape[1]
        x = self.word_emb(idx) + self.pos_emb(torch.arange(L))
        for blk in self.pre_layers:
            x = blk(x)
        residual = x
        # Boundary predictor and Gumbel-sigmoid (predictor.rs sample / gumbel_sigmoid).
        logits_b = self.bp_output(F.gelu(self.bp_hidden(x))).squeeze(-1)
        u = torch.rand(logits_b.shape).clamp(F32_EPS, 1.0 - F32_EPS)
        noise = u.log() - torch.log1p(-u)
        soft = torch.sigmoid((logits_b + noise) / self.temperature)
        hard = StraightThrough.apply(soft, self.threshold)
        prior_loss = binomial_prior_loss(hard, self.prior)
        n = int(hard.detach().sum(1).max().item())
        s = self.down_ln(downsample(hard, x, self.null_group, n))
        for blk in self.shortened_layers:
            s = blk(s)
        x = upsample(hard, s, n) + residual
        for blk in self.post_layers:
            x = blk(x)
        return self.final_cast(self.ln_f(x)), hard, prior_loss


def main():
    args = arguments(__doc__, **{"--init-seed": dict(
        type=int, default=None,
        help="torch seed of the initial weights and the Gumbel noise (default: --seed); "
             "the batches always come from --seed")})
    torch.manual_seed(args.seed if args.init_seed is None else args.init_seed)
    V, train, val = shakespeare()
    model = HourglassLm(V, BLOCK)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"hourglass: n_embd 128, n_head 4, block_size {BLOCK}, vocab {V}, bias false, layers 1/2/1, "
          f"gumbel (prior 0.2, temperature 0.5): {n_params} parameters", flush=True)
    opt = adamw(model)
    batches = Batches(train, args.seed)
    t0 = time.time()
    for it in range(args.steps):
        set_lr(opt, lr_at(it, args.steps))
        x, y = batches.next()
        logits, hard, prior_loss = model(x)
        ce = F.cross_entropy(logits.view(-1, V), y.view(-1))
        step(opt, model, ce + prior_loss)
        if args.log_every > 0 and it % args.log_every == 0:
            print(f"step {it}: train loss {ce.item():.4f}, prior loss {prior_loss.item():.4f}, "
                  f"boundary rate {hard.mean().item():.3f}", flush=True)
    wall = time.time() - t0
    model.eval()
    total, count, rate_sum = 0.0, 0, 0.0
    with torch.no_grad():
        for x, y in validation_windows(val):
            logits, hard, _ = model(x)
            total += F.cross_entropy(logits.reshape(-1, V), y, reduction="sum").item()
            rate_sum += hard.sum().item()
            count += y.numel()
    print(f"val boundary rate {rate_sum / count:.3f} over {count} predictions")
    summary(total / count, args.steps, wall)


if __name__ == "__main__":
    main()
