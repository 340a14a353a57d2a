"""What the PyTorch peers of `eingrad train gpt|mlstm|hourglass` share: the CLI's data split,
its SplitMix64 batch windows, AdamW groups and learning-rate schedule, the whole-split
evaluation in consecutive windows, and the summary line. Each mirrors a piece of
cli/src/train (named at each definition) so that the peers train on the same batches with
the same schedule and are scored as `eingrad eval` scores.
"""
import argparse
import math
import os

import torch

M64 = (1 << 64) - 1
BATCH, BLOCK = 12, 64  # the CLI's defaults (--batch, --block-size)


def mix64(z):
    """SplitMix64's finaliser (src/kernels: the one used by eingrad's seeds)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def derive_seed(seed, k):
    """cli `derive_seed`: the k-th independent stream of a run's seed."""
    return mix64((mix64(seed ^ 0x5DEECE66D1CE4E5B) + k * 0x9E3779B97F4A7C15) & M64)


class Rng:
    """cli `Rng`: SplitMix64, `below(n)` by multiply-shift."""

    def __init__(self, state):
        self.state = state

    def below(self, n):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        return (mix64(self.state) * n) >> 64


def arguments(doc, **extra):
    """The peers' common flags (--steps, --seed, --threads, --log-every); `extra` maps more
    flag names to `add_argument` keyword dicts."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads (default: torch's own choice)")
    ap.add_argument("--log-every", type=int, default=250)
    for flag, kw in extra.items():
        ap.add_argument(flag, **kw)
    args = ap.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return args


def shakespeare():
    """cli `CharCorpus`: the shipped text, characters sorted as the vocabulary, split 90/10.
    Returns (vocabulary size, train ids, validation ids)."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")
    text = open(os.path.join(root, "data/shakespeare/input.txt"), encoding="utf-8").read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    data = [index[c] for c in text]
    split = int(len(data) * 0.9)
    return len(chars), data[:split], data[split:]


def adamw(model, lr=1e-3):
    """cli `new_settings`: AdamW (betas 0.9/0.99, eps 1e-8), weight decay 0.1 on parameters of
    rank >= 2 and none on the rest (nanoGPT's split)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.99), eps=1e-8)


def lr_at(it, steps, max_lr=1e-3, min_lr=1e-4):
    """cli `WarmupCosine` as configured by default: linear warmup over min(100, steps/10)
    steps, cosine decay to `min_lr` at the last step (nanoGPT's get_lr)."""
    warmup = min(100, steps // 10)
    if it < warmup:
        return max_lr * (it + 1) / (warmup + 1)
    if it > steps:
        return min_lr
    ratio = (it - warmup) / (steps - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (max_lr - min_lr)


class Batches:
    """cli `CharCorpus::batch`: BATCH random windows of BLOCK characters per step, drawn from
    `Rng(derive_seed(seed, 1))` in the CLI's order; `next()` gives (x, y)."""

    def __init__(self, train, seed):
        self.rng = Rng(derive_seed(seed, 1))
        self.train = torch.tensor(train)

    def next(self):
        n = len(self.train) - BLOCK
        starts = [self.rng.below(n) for _ in range(BATCH)]
        x = torch.stack([self.train[i:i + BLOCK] for i in starts])
        y = torch.stack([self.train[i + 1:i + BLOCK + 1] for i in starts])
        return x, y


def set_lr(opt, lr):
    for g in opt.param_groups:
        g["lr"] = lr


def step(opt, model, loss):
    """One update as the CLI does it: backward, clip the global norm to 1, AdamW step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def validation_windows(val):
    """cli `CharLm::text_loss`: the whole validation split in consecutive windows of BLOCK,
    32 full windows per forward, then the remainder; yields (x, y) with y flattened."""
    val_t = torch.tensor(val)
    n = len(val) - 1
    full = n // BLOCK
    for s in range(0, full, 32):
        nb = min(32, full - s)
        yield (val_t[s * BLOCK:(s + nb) * BLOCK].view(nb, BLOCK),
               val_t[s * BLOCK + 1:(s + nb) * BLOCK + 1])
    rest = n - full * BLOCK
    if rest > 0:
        yield (val_t[full * BLOCK:full * BLOCK + rest].view(1, rest),
               val_t[full * BLOCK + 1:full * BLOCK + rest + 1])


def summary(val_loss, steps, wall):
    """The line every peer ends with (the README's tables read it)."""
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads: val loss {val_loss:.4f} "
          f"nats ({val_loss / math.log(2):.4f} bits/char), {steps} steps in {wall:.1f} s, "
          f"{steps * BATCH * BLOCK / wall:.0f} tokens/s")
