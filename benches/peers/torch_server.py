"""A long-lived PyTorch peer for interleaved benchmarks. Usage: torch_server.py THREADS

The machine this project runs on is noisy (its speed drifts by 2x within a minute), so
timing eingrad for a minute and then torch for a minute compares two different machines.
The Rust benches start this server once and alternate short timings of the same workload,
eingrad then torch then eingrad ..., and report the median of the per-round ratios.

Protocol: one JSON request per line on stdin, {"case": {...}, "min_time": s, "min_reps": n};
one JSON reply per line on stdout, {"median_s": t} or {"error": "..."}. Cases (kind):
- einsum:   {"pattern", "shapes", "dtype": "float32"|"float64", "left_to_right": bool}
            -> torch.einsum (with opt_einsum switched off when left_to_right)
- chain100: {"shape", "mode": "fwd_bwd"|"fwd_nograd"} -> the WORKLOADS.md chain of 100
            elementwise ops (x1.01, +0.1, sin, tanh) then sum (and backward)
- mlp:      {"sizes", "batch", "mode": "step"|"fwd_bwd"|"backward"|"forward"} -> ReLU MLP,
            cross-entropy, Adam (lr 1e-3) for "step"; "backward" replays a retained graph
- causal_conv: {"mode": "fwd_bwd"} -> conv1d 64->64, k 3, length 1024, batch 16, left pad 2
- gpt_step: {"vocab", "n_layer", "n_head", "n_embd", "block", "batch"} -> one training step
            of a nanoGPT-architecture GPT (no biases, tied head, exact GELU): zero_grad,
            forward, cross-entropy, backward, clip_grad_norm_(1.0), AdamW (betas 0.9/0.99,
            decay 0.1 on 2-d weights); the batch is fixed
- mlstm_step: {"vocab", "batch", "block"} -> one training step of `eingrad train mlstm`'s
            default model, class MlstmLm of train_mlstm_torch.py (7 layers, 4 heads, width 128,
            proj factor 2, conv 4, q/k/v blocks of 4, tied head, no bias): zero_grad, forward,
            cross-entropy, backward, clip_grad_norm_(1.0), AdamW with peer_common.adamw's groups
            (betas 0.9/0.99, eps 1e-8, decay 0.1 on rank >= 2, lr 1e-3); the batch is fixed
            (B x T ids from torch.Generator seeded 0)
- hourglass_step: {"vocab", "batch", "block"} -> the same step for `eingrad train hourglass`'s
            default model, class HourglassLm of train_hourglass_torch.py (width 128, 4 heads,
            layers 1/2/1, MLP 512, no bias, Gumbel boundaries prior 0.2, temperature 0.5); the
            loss is cross-entropy + prior loss; Gumbel noise is drawn afresh every step, so the
            shortened length varies from step to step (as in training)
- layer:    {"layer": "attention"|"attention_eager"|"block"|"layer_norm", "B", "T", "C", "H"}
            -> nanoGPT's CausalSelfAttention (F.scaled_dot_product_attention, as nanoGPT runs
            it; "attention_eager": its explicit masked-softmax path), its pre-LN Block, or
            nn.LayerNorm: forward + backward of sum(y) into the input and the parameters
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../../shared/bench/peers"))
sys.path.insert(0, HERE)  # the training peers (train_*_torch.py) and their peer_common.py
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _common import bench  # noqa: E402

torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)


def chain(y):
    for _ in range(25):
        y = y * 1.01
        y = y + 0.1
        y = torch.sin(y)
        y = torch.tanh(y)
    return y


def make(case):
    kind = case["kind"]
    if kind == "einsum":
        dt = getattr(torch, case.get("dtype", "float32"))
        ops = [torch.rand(*s, dtype=dt) - 0.5 for s in case["shapes"]]
        if case.get("left_to_right"):
            # torch contracts left to right when opt_einsum is off (the flag is global).
            def ltr():
                torch.backends.opt_einsum.enabled = False
                try:
                    return torch.einsum(case["pattern"], *ops)
                finally:
                    torch.backends.opt_einsum.enabled = True
            return ltr
        return lambda: torch.einsum(case["pattern"], *ops)
    if kind == "chain100":
        x0 = torch.randn(*case["shape"])
        if case["mode"] == "fwd_nograd":
            def f():
                with torch.no_grad():
                    return chain(x0).sum()
            return f
        x = x0.clone().requires_grad_(True)

        def fb():
            x.grad = None
            chain(x).sum().backward()
        return fb
    if kind == "mlp":
        sizes, batch = case["sizes"], case.get("batch", 128)
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i + 2 < len(sizes):
                layers.append(nn.ReLU())
        model = nn.Sequential(*layers)
        x = torch.randn(batch, sizes[0])
        y = (torch.arange(batch) * 7 + 3) % sizes[-1]
        mode = case["mode"]
        if mode == "forward":
            def fwd():
                with torch.no_grad():
                    return model(x)
            return fwd
        if mode == "backward":
            loss = F.cross_entropy(model(x), y)

            def bwd():
                model.zero_grad(set_to_none=True)
                loss.backward(retain_graph=True)
            return bwd
        if mode == "fwd_bwd":
            def fb():
                model.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
            return fb
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()
        return step
    if kind == "causal_conv":
        conv = nn.Conv1d(64, 64, kernel_size=3, padding=0)
        xc = torch.randn(16, 64, 1024, requires_grad=True)

        def conv_fb():
            xc.grad = None
            conv.zero_grad(set_to_none=True)
            conv(F.pad(xc, (2, 0))).sum().backward()
        return conv_fb
    if kind == "layer":
        return make_layer(case)
    if kind == "gpt_step":
        return make_gpt_step(case)
    if kind in ("mlstm_step", "hourglass_step"):
        return make_peer_step(case)
    raise ValueError("unknown case kind %r" % kind)


class Attention(nn.Module):
    """nanoGPT's CausalSelfAttention without dropout."""

    def __init__(self, C, H, flash):
        super().__init__()
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)
        self.n_head, self.flash = H, flash

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if self.flash:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / k.size(-1) ** 0.5)
            mask = torch.ones(T, T, dtype=torch.bool).triu(1)
            att = F.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
            y = att @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.attn = Attention(C, H, True)
        self.c_fc, self.c_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x))))


def make_layer(case):
    B, T, C, H = case["B"], case["T"], case["C"], case["H"]
    name = case["layer"]
    if name == "layer_norm":
        module = nn.LayerNorm(C)
    elif name == "block":
        module = Block(C, H)
    else:
        module = Attention(C, H, name == "attention")
    x = torch.randn(B, T, C, requires_grad=True)

    def fb():
        x.grad = None
        module.zero_grad(set_to_none=True)
        module(x).sum().backward()
    return fb



class Gpt(nn.Module):
    """The nanoGPT architecture (bias=False), written for this peer."""

    def __init__(self, V, L, H, C, T):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.h = nn.ModuleList()
        for _ in range(L):
            b = Block(C, H)
            for m in b.modules():
                if isinstance(m, (nn.Linear, nn.LayerNorm)) and m.bias is not None:
                    m.bias = None
            self.h.append(b)
        self.ln_f = nn.LayerNorm(C, bias=False)
        self.head = nn.Linear(C, V, bias=False)
        self.head.weight = self.wte.weight

    def forward(self, idx):
        t = idx.size(1)
        x = self.wte(idx) + self.wpe(torch.arange(t))
        for b in self.h:
            x = b(x)
        return self.head(self.ln_f(x))


def make_gpt_step(case):
    V, L, H, C, T, B = (case[k] for k in ("vocab", "n_layer", "n_head", "n_embd", "block", "batch"))
    model = Gpt(V, L, H, C, T)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.99))
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, V, (B, T), generator=g)
    y = torch.randint(0, V, (B, T), generator=g)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x).view(-1, V), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()
    return step


def make_peer_step(case):
    """One training step of a training peer's model (mlstm_step, hourglass_step)."""
    from peer_common import adamw
    V, T, B = case["vocab"], case["block"], case["batch"]
    if case["kind"] == "mlstm_step":
        from train_mlstm_torch import MlstmLm
        model = MlstmLm(V)

        def loss_of(x, y):
            return F.cross_entropy(model(x).view(-1, V), y.view(-1))
    else:
        from train_hourglass_torch import HourglassLm
        model = HourglassLm(V, T)

        def loss_of(x, y):
            logits, _, prior_loss = model(x)
            return F.cross_entropy(logits.view(-1, V), y.view(-1)) + prior_loss
    opt = adamw(model)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, V, (B, T), generator=g)
    y = torch.randint(0, V, (B, T), generator=g)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_of(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()
    return step


cache = {}
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    try:
        req = json.loads(line)
        key = json.dumps(req["case"], sort_keys=True)
        if key not in cache:
            cache[key] = make(req["case"])
        t, _ = bench(cache[key], min_reps=req.get("min_reps", 5), min_time=req.get("min_time", 0.3),
                     warmup_time=0.05)
        print(json.dumps({"median_s": t}), flush=True)
    except Exception as e:  # reply, never die: the bench goes on without this row
        print(json.dumps({"error": repr(e)}), flush=True)

