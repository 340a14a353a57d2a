"""Goldens for tests/optim_train.rs: nanoGPT's optimizer recipe in PyTorch, in f64.

AdamW with two parameter groups (weight decay 0.1 on the 2-d weights, 0 on the biases,
chosen by rank as nanoGPT's configure_optimizers does), betas (0.9, 0.95), nanoGPT's
get_lr (warmup then cosine) applied before every step, and clip_grad_norm_(1.0).

Parameters and gradients are closed-form functions of the flat element index k (over all
parameters in order) and the step t, computed with Python's math (glibc, as Rust's f64
methods), so the Rust test regenerates them exactly and needs no Python:

    p0[k]      = 0.5 * cos(0.3 * k + 0.1)
    grad_t[k]  = a_t * sin(0.7 * k + 1.3 * t + 0.2),   a_t = 0.1 + 0.25 * (t % 4)

The gradient norm is about 3.4 a_t, so clipping is idle every fourth step and active in the
other three.

Run from the repository root:
    /work/ref-venv/bin/python tests/golden/optim/make_optim_goldens.py
It writes tests/golden/optim/adamw_groups_cosine_clip.json.
"""

import json
import math
import os

import torch

SHAPES = {"w1": [4, 3], "b1": [3], "w2": [3, 2], "b2": [2]}
MAX_LR, MIN_LR, WARMUP, DECAY = 1e-2, 1e-3, 5, 15
STEPS = 20
WEIGHT_DECAY = 0.1
BETAS = (0.9, 0.95)
EPS = 1e-8
MAX_NORM = 1.0


def get_lr(it):
    """nanoGPT's train.py get_lr, verbatim up to names."""
    if it < WARMUP:
        return MAX_LR * (it + 1) / (WARMUP + 1)
    if it > DECAY:
        return MIN_LR
    decay_ratio = (it - WARMUP) / (DECAY - WARMUP)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return MIN_LR + coeff * (MAX_LR - MIN_LR)


def numel(shape):
    return math.prod(shape)


def flat_values(f):
    """One list per parameter of f(k), k the flat index over all parameters."""
    out, k = {}, 0
    for name, shape in SHAPES.items():
        out[name] = [f(k + j) for j in range(numel(shape))]
        k += numel(shape)
    return out


def main():
    torch.set_default_dtype(torch.float64)
    init = flat_values(lambda k: 0.5 * math.cos(0.3 * k + 0.1))
    params = {
        n: torch.tensor(init[n], dtype=torch.float64).reshape(SHAPES[n]).requires_grad_(True)
        for n in SHAPES
    }
    decay = [p for p in params.values() if p.dim() >= 2]
    no_decay = [p for p in params.values() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": WEIGHT_DECAY},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=MAX_LR,
        betas=BETAS,
        eps=EPS,
        foreach=False,
    )
    steps = []
    for t in range(STEPS):
        lr = get_lr(t)
        for group in opt.param_groups:
            group["lr"] = lr
        a = 0.1 + 0.25 * (t % 4)
        grads = flat_values(lambda k: a * math.sin(0.7 * k + 1.3 * t + 0.2))
        for n, p in params.items():
            p.grad = torch.tensor(grads[n], dtype=torch.float64).reshape(SHAPES[n])
        total = torch.nn.utils.clip_grad_norm_(list(params.values()), MAX_NORM)
        opt.step()
        steps.append(
            {
                "step": t,
                "lr": lr,
                "total_norm": total.item(),
                "params": {n: p.detach().reshape(-1).tolist() for n, p in params.items()},
            }
        )
    out = {
        "torch": torch.__version__,
        "shapes": SHAPES,
        "schedule": {"max_lr": MAX_LR, "min_lr": MIN_LR, "warmup_steps": WARMUP,
                     "decay_steps": DECAY},
        "weight_decay": WEIGHT_DECAY,
        "betas": list(BETAS),
        "eps": EPS,
        "max_norm": MAX_NORM,
        "init": init,
        "steps": steps,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "adamw_groups_cosine_clip.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
