"""The PyTorch side of `eingrad train gpt`: nanoGPT's architecture and CPU recipe on the
shipped Shakespeare, with the same batches (the CLI's SplitMix64 windows, seed 1337), the same
schedule and the same evaluation (the whole validation split in consecutive windows of 64).

    OMP_NUM_THREADS=2 ../ref-venv/bin/python benches/peers/train_gpt_torch.py [--steps 2000]

Prints the validation loss in nats per character, the wall time and tokens/s. Written for
this project (the model follows nanoGPT's model.py: pre-LN blocks, no biases, exact GELU,
tied head, N(0, 0.02) init with c_proj scaled by 1/sqrt(2 n_layer)).
"""
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from peer_common import (BLOCK, Batches, adamw, arguments, lr_at, set_lr, shakespeare, step,
                         summary, validation_windows)


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
    args = arguments(__doc__)
    torch.manual_seed(args.seed)
    V, train, val = shakespeare()
    model = Gpt(V, BLOCK)
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
