"""The PyTorch side of `eingrad train mlstm` (its default run): the same residual xLSTM mLSTM
language model, on the shipped Shakespeare, with the same batches (the CLI's SplitMix64
windows, seed 1337), the same schedule, optimizer and clipping, and the same evaluation (the
whole validation split in consecutive windows of 64, as `eingrad eval CKPT`).

    OMP_NUM_THREADS=2 ../ref-venv/bin/python benches/peers/train_mlstm_torch.py \
        [--steps 2000] [--threads 2] [--log-every 250]

Prints a train loss every --log-every steps, then the validation loss in nats per character,
the wall time of the training steps and tokens/s (batch assembly in Python included). Written
for this project; the mLSTM layer started from tests/golden/mlstm/make_mlstm_golden.py and
reproduces that file's golden output and gradients (to float32 storage rounding).
Bit-equality with eingrad is not the aim (each side draws its own initial weights from its own
generator); every size, layer, initial distribution and training choice is the same.

With --init FILE the model starts from an eingrad mlstm checkpoint's weights instead of its
own draw. eingrad's initial weights: `eingrad train mlstm --steps 1 --lr 0 --min-lr 0
--weight-decay 0 --out DIR`, then --init DIR/model.safetensors. From those, 60 steps here
followed eingrad's train losses to within 5e-5, and the validation loss after them equalled
`eingrad eval` of eingrad's own 60-step run (2.3114), which checks model, batches, schedule,
AdamW groups, clipping and evaluation together.

Config (cli/src/train/mod.rs `new_spec` / `new_settings`, cli/src/train/model.rs `MlstmSpec`
default and `ModelSpec::build`):
    vocab 76 (the shipped corpus's sorted distinct characters), 90/10 split
    (cli/src/data.rs `CharCorpus`);
    n_layer 7, n_head 4, n_embd 128, block_size 64, bias false (LayerNorms without bias),
    dropout 0, proj_factor 2 rounded up to a multiple of 64 (inner width I = 256, head width
    DH = 64), conv kernel 4, q/k/v blocks of 4, tied head
    steps 2000, batch 12, AdamW lr 1e-3, betas (0.9, 0.99), eps 1e-8, weight decay 0.1 on
    parameters of rank >= 2 only (`split_decay_by_rank`: embedding, proj_up, q/k/v, conv weight,
    gate weights, proj_down), 0 on the rest (LayerNorm weights, conv bias, gate biases, outnorm
    weight, learnable_skip); min_lr = lr/10, warmup min(100, steps/10) (src/optim/schedule.rs
    `WarmupCosine`, nanoGPT's get_lr), cosine to min_lr at step `steps`; global grad-norm clip
    1.0 (src/optim/mod.rs `clip_grad_norm`: coef = 1/(norm + 1e-6) when < 1); seed 1337; batch
    windows from Rng(derive_seed(seed, 1)), 12 draws of `below(len(train) - 64)` per step
    (cli/src/data.rs `CharCorpus::batch`); loss: mean next-character cross-entropy, nothing
    auxiliary (model.rs `CharLm::loss`, Net::Mlstm).

Architecture (src/models/mlstm_lm.rs `MlstmLm`; the layer src/models/xlstm/layer.rs
`MlstmLayer`, its parts in src/models/xlstm/components.rs and the cell in
src/models/xlstm/mod.rs; xLSTM's mLSTM block without the feed-forward):
    token embedding (V, E) ~ N(0, 2/(5E)) (std sqrt(2/(5E)), xLSTM small_init), no position
        embedding
    7 x  x = x + MlstmLayer(LayerNorm(x))   LayerNorm: weight 1, no bias, eps 1e-5
    LayerNorm (ln_f, same kind), logits = x @ embedding.T (tied head)
  MlstmLayer (`MlstmLayer::new` init, `Module::forward` parallel form):
    proj_up  Linear(E -> 2I, no bias) ~ N(0, 2/(5E));  x, z = split (first I, last I)
    x_conv = SiLU(causal depthwise Conv1d(I, kernel 4, groups I, bias)(x)), torch's default
        init (U(+-1/sqrt(4)) weight and bias; `Conv1d::new`), K-1 zeros on the left
    q = q_proj(x_conv), k = k_proj(x_conv), v = v_proj(x): block-diagonal (I/4 blocks of 4x4,
        weight (I/4, 4, 4), y[h*4+o] = sum_i W[h,o,i] x[h*4+i]; `LinearHeadwise`), no bias,
        ~ N(0, 2/(5E)) (E, not the block size, as xLSTM)
    igate, fgate = Linear(3I -> NH)(cat(q, k, v)): weights 0; igate bias ~ N(0, 0.1^2),
        fgate bias linspace(3, 6, NH)
    cell (mod.rs `decay_matrix`, `mlstm_parallel_from_decay`), per head (DH = I/NH):
        L = cumsum(logsigmoid(f)), D~_ij = L_i - L_j + i_j (j <= i), -inf above the diagonal
        m_i = max_j D~_ij, C_ij = (q_i.k_j / sqrt(DH)) exp(D~_ij - m_i)
        n_i = max(|sum_j C_ij|, exp(-m_i)),  h_i = sum_j C_ij v_j / (n_i + 1e-6)
    outnorm: per-head layer norm over DH (group norm, NH groups, eps 1e-5), scale 1 + w,
        w init 0, no shift (`MultiHeadLayerNorm`)
    y = proj_down((h + learnable_skip * x_conv) * SiLU(z)), learnable_skip init 1,
        proj_down Linear(I -> E, no bias) ~ N(0, (2 / n_layer / sqrt(E))^2) (xLSTM wang_init,
        num_blocks = n_layer, `MlstmLmConfig::new`); dropout 0
"""
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from peer_common import (BLOCK, Batches, adamw, arguments, lr_at, set_lr, shakespeare, step,
                         summary, validation_windows)


MLSTM_EPS = 1e-6


def mlstm_parallel(q, k, v, igate, fgate):
    """The parallel stabilised mLSTM cell: q, k, v (B, NH, S, DH), gates (B, NH, S, 1)."""
    s, dh = q.shape[2], q.shape[3]
    cum = torch.cumsum(F.logsigmoid(fgate), dim=2)  # L_i = sum_{t<=i} log sigmoid(f_t)
    lower = torch.ones(s, s, dtype=torch.bool, device=q.device).tril()
    dmat = torch.where(lower, cum - cum.transpose(-2, -1), float("-inf"))
    dmat = dmat + igate.transpose(-2, -1)
    m = dmat.amax(dim=-1, keepdim=True)
    c = (q @ k.transpose(-2, -1) / math.sqrt(dh)) * torch.exp(dmat - m)
    n = torch.maximum(c.sum(dim=-1, keepdim=True).abs(), torch.exp(-m))
    return (c @ v) / (n + MLSTM_EPS)


class LinearHeadwise(nn.Module):
    """Block-diagonal projection, weight (blocks, d, d): xLSTM's LinearHeadwiseExpand."""

    def __init__(self, features, block, std):
        super().__init__()
        self.block = block
        self.weight = nn.Parameter(torch.empty(features // block, block, block))
        nn.init.normal_(self.weight, 0.0, std)

    def forward(self, x):
        lead = x.shape[:-1]
        y = torch.einsum("...hi,hoi->...ho", x.reshape(*lead, -1, self.block), self.weight)
        return y.reshape(*lead, -1)


class MlstmLayer(nn.Module):
    def __init__(self, E, NH, num_blocks, proj_factor=2.0, round_to=64, kernel=4, qkv_block=4,
                 norm_eps=1e-5):
        super().__init__()
        inner = int(math.ceil(proj_factor * E / round_to) * round_to)
        self.inner, self.NH, self.kernel, self.norm_eps = inner, NH, kernel, norm_eps
        small = math.sqrt(2.0 / (5.0 * E))
        self.proj_up = nn.Linear(E, 2 * inner, bias=False)
        nn.init.normal_(self.proj_up.weight, 0.0, small)
        self.q_proj = LinearHeadwise(inner, qkv_block, small)
        self.k_proj = LinearHeadwise(inner, qkv_block, small)
        self.v_proj = LinearHeadwise(inner, qkv_block, small)
        # torch's default Conv1d init, as eingrad's Conv1d::new
        self.conv = nn.Conv1d(inner, inner, kernel, groups=inner, bias=True)
        self.igate = nn.Linear(3 * inner, NH)
        self.fgate = nn.Linear(3 * inner, NH)
        with torch.no_grad():
            self.igate.weight.zero_()
            self.igate.bias.normal_(0.0, 0.1)
            self.fgate.weight.zero_()
            self.fgate.bias.copy_(torch.linspace(3.0, 6.0, NH))
        self.outnorm_weight = nn.Parameter(torch.zeros(inner))  # the scale minus 1
        self.learnable_skip = nn.Parameter(torch.ones(inner))
        self.proj_down = nn.Linear(inner, E, bias=False)
        nn.init.normal_(self.proj_down.weight, 0.0, 2.0 / num_blocks / math.sqrt(E))

    def forward(self, u):
        b, s, _ = u.shape
        inner, NH = self.inner, self.NH
        xm, z = self.proj_up(u).split(inner, dim=-1)
        xc = self.conv(F.pad(xm.transpose(1, 2), (self.kernel - 1, 0))).transpose(1, 2)
        xc = F.silu(xc)
        q, k, v = self.q_proj(xc), self.k_proj(xc), self.v_proj(xm)
        gin = torch.cat([q, k, v], dim=-1)
        ig = self.igate(gin).transpose(1, 2).unsqueeze(-1)  # (B, NH, S, 1)
        fg = self.fgate(gin).transpose(1, 2).unsqueeze(-1)

        def heads(t):
            return t.view(b, s, NH, inner // NH).transpose(1, 2)

        h = mlstm_parallel(heads(q), heads(k), heads(v), ig, fg)  # (B, NH, S, DH)
        h = F.group_norm(h.transpose(1, 2).reshape(b * s, inner), NH,
                         weight=1.0 + self.outnorm_weight, eps=self.norm_eps).view(b, s, inner)
        return self.proj_down((h + self.learnable_skip * xc) * F.silu(z))


class Block(nn.Module):
    def __init__(self, E, NH, L):
        super().__init__()
        self.norm = nn.LayerNorm(E, eps=1e-5, bias=False)
        self.mlstm = MlstmLayer(E, NH, num_blocks=L)

    def forward(self, x):
        return x + self.mlstm(self.norm(x))


class MlstmLm(nn.Module):
    def __init__(self, V, L=7, NH=4, E=128):
        super().__init__()
        self.token_embedding = nn.Embedding(V, E)
        nn.init.normal_(self.token_embedding.weight, 0.0, math.sqrt(2.0 / (5.0 * E)))
        self.blocks = nn.ModuleList(Block(E, NH, L) for _ in range(L))
        self.ln_f = nn.LayerNorm(E, eps=1e-5, bias=False)

    def forward(self, idx):
        x = self.token_embedding(idx)
        for blk in self.blocks:
            x = blk(x)
        return self.ln_f(x) @ self.token_embedding.weight.T  # tied head


# eingrad's (= xLSTM's) names of the layer's parameters where this file names them otherwise.
EINGRAD_NAMES = {"conv1d.conv.weight": "conv.weight", "conv1d.conv.bias": "conv.bias",
                 "mlstm_cell.igate.weight": "igate.weight", "mlstm_cell.igate.bias": "igate.bias",
                 "mlstm_cell.fgate.weight": "fgate.weight", "mlstm_cell.fgate.bias": "fgate.bias",
                 "mlstm_cell.outnorm.weight": "outnorm_weight"}


def load_eingrad(model, path):
    """Loads an eingrad mlstm model.safetensors (lm_head.weight is the tied embedding)."""
    from safetensors.torch import load_file
    sd = {}
    for k, v in load_file(path).items():
        if k == "lm_head.weight":
            continue
        if ".mlstm." in k:
            pre, rest = k.split(".mlstm.", 1)
            k = f"{pre}.mlstm.{EINGRAD_NAMES.get(rest, rest)}"
        sd[k] = v
    model.load_state_dict(sd, strict=True)


def main():
    args = arguments(__doc__, **{"--init": dict(
        default=None, help="start from the weights of this eingrad mlstm model.safetensors")})
    torch.manual_seed(args.seed)
    V, train, val = shakespeare()
    model = MlstmLm(V)
    if args.init:
        load_eingrad(model, args.init)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"mlstm: n_layer 7, n_head 4, n_embd 128, block_size {BLOCK}, vocab {V}, "
          f"{n_params} parameters ({n_params / 1e6:.2f}M)", flush=True)
    opt = adamw(model)
    batches = Batches(train, args.seed)
    t0 = time.time()
    for it in range(args.steps):
        set_lr(opt, lr_at(it, args.steps))
        x, y = batches.next()
        loss = F.cross_entropy(model(x).view(-1, V), y.view(-1))
        step(opt, model, loss)
        if args.log_every > 0 and it % args.log_every == 0:
            print(f"step {it}: train loss {loss.item():.4f}", flush=True)
    wall = time.time() - t0
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for x, y in validation_windows(val):
            total += F.cross_entropy(model(x).view(-1, V), y, reduction="sum").item()
            n += y.numel()
    summary(total / n, args.steps, wall)


if __name__ == "__main__":
    main()
