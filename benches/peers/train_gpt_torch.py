"""The PyTorch side of `eingrad train gpt`: nanoGPT's architecture and CPU recipe on the
shipped Shakespeare, with the same batches (the CLI's SplitMix64 windows, seed 1337), the same
schedule and the same evaluation (the whole validation split in consecutive windows of 64).

    OMP_NUM_THREADS=2 ../ref-venv/bin/python benches/peers/train_gpt_torch.py [--steps 2000]

Prints the validation loss in nats per character, the wall time and tokens/s. Written for
this project (the model follows nanoGPT's model.py: pre-LN blocks, no biases, exact GELU,
tied head, N(0, 0.02) init with c_proj scaled by 1/sqrt(2 n_layer)).
"""
import argparse
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

M64 = (1 << 64) - 1


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def derive_seed(seed, k):
    return mix64((mix64(seed ^ 0x5DEECE66D1CE4E5B) + k * 0x9E3779B97F4A7C15) & M64)


class Rng:
    def __init__(self, state):
        self.state = state

    def below(self, n):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        return (mix64(self.state) * n) >> 64


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C, bias=False)
        self.c_attn = nn.Linear(C, 3 * C, bias=False)
        self.attn_proj = nn.Linear(C, C, bias=False)
        self.ln_2 = nn.LayerNorm(C, bias=False)
        self.c_fc = nn.Linear(C, 4 * C, bias=False)
        self.mlp_proj = nn.Linear(4 * C, C, bias=False)
        self.H = H

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (z.view(B, T, self.H, C // self.H).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class Gpt(nn.Module):
    def __init__(self, V, T, L=4, H=4, C=128):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.h = nn.ModuleList(Block(C, H) for _ in range(L))
        self.ln_f = nn.LayerNorm(C, bias=False)
        self.head = nn.Linear(C, V, bias=False)
        self.head.weight = self.wte.weight
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * L))
            elif p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for b in self.h:
            x = b(x)
        return self.head(self.ln_f(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1337)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")
    text = open(os.path.join(root, "data/shakespeare/input.txt")).read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    data = [index[c] for c in text]
    split = int(len(data) * 0.9)
    train, val = data[:split], data[split:]
    V, T, B = len(chars), 64, 12
    model = Gpt(V, T)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99))
    warmup, decay_steps, max_lr, min_lr = min(100, args.steps // 10), args.steps, 1e-3, 1e-4

    def lr_at(it):
        if it < warmup:
            return max_lr * (it + 1) / (warmup + 1)
        if it > decay_steps:
            return min_lr
        ratio = (it - warmup) / (decay_steps - warmup)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (max_lr - min_lr)

    rng = Rng(derive_seed(args.seed, 1))
    train_t = torch.tensor(train)
    t0 = time.time()
    for it in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(it)
        starts = [rng.below(len(train) - T) for _ in range(B)]
        x = torch.stack([train_t[i:i + T] for i in starts])
        y = torch.stack([train_t[i + 1:i + T + 1] for i in starts])
        loss = F.cross_entropy(model(x).view(-1, V), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if it % 250 == 0:
            print(f"step {it}: train loss {loss.item():.4f}", flush=True)
    wall = time.time() - t0
    model.eval()
    n = len(val) - 1
    total, count = 0.0, 0
    with torch.no_grad():
        for s in range(0, n, T):
            m = min(T, n - s)
            x = torch.tensor(val[s:s + m]).view(1, m)
            y = torch.tensor(val[s + 1:s + m + 1])
            total += F.cross_entropy(model(x).view(-1, V), y, reduction="sum").item()
            count += m
    vl = total / count
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads: val loss {vl:.4f} nats "
          f"({vl / math.log(2):.4f} bits/char), {args.steps} steps in {wall:.1f} s, "
          f"{args.steps * B * T / wall:.0f} tokens/s")


if __name__ == "__main__":
    main()
