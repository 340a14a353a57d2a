"""nanoGPT compatibility goldens for `eingrad eval` (cli/tests/train.rs reads the outputs; the
tests never run Python).

A from-scratch PyTorch reimplementation of the GPT of nanoGPT's `model.py` (same classes and
module names, so `state_dict()` has nanoGPT's keys: transformer.wte/wpe, transformer.h.{i}.ln_1,
attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj, transformer.ln_f, lm_head tied to wte).

Writes, beside this script:
- gpt_bias.safetensors: n_layer 2, n_head 2, n_embd 16, block_size 16, bias=True, the model
  without flash attention (so the state dict has nanoGPT's `attn.bias` mask buffers), and
  `lm_head.weight` saved as a clone (safetensors refuses tensors that share memory).
- gpt_nobias.safetensors: the same sizes with bias=False, flash attention (no buffers), and
  `lm_head.weight` left out.
  Both: nanoGPT's init under manual_seed, then every parameter perturbed by N(0, 0.1) so that
  biases and LayerNorms matter; metadata n_layer, n_head, n_embd, block_size, vocab_size, bias,
  vocab (the shipped corpus's sorted characters), dropout -- and no `model` key, as a nanoGPT
  user would write it.
- expected.json: PyTorch's loss (float32) on two texts for each file: the mean next-character
  cross-entropy of text[1:] given text[:-1]; a text longer than block_size + 1 is scored in
  consecutive windows of block_size predictions, each seeing only its own window (what
  `eingrad eval --text` does).
- The reverse direction: eingrad_gpt.safetensors is a checkpoint eingrad wrote (committed; made
  with the command below); this script loads it into the PyTorch GPT with
  load_state_dict(strict=True) and records PyTorch's losses on it in expected.json.

Run from the repository root:  ../ref-venv/bin/python tests/golden/gpt/make_gpt_golden.py
(torch 2.15, safetensors 0.8). eingrad_gpt.safetensors was made with:
  cargo run --release -- train gpt --n-layer 2 --n-head 2 --n-embd 16 --block-size 16 \
      --bias true --steps 60 --eval-every 0 --eval-iters 1 --out /tmp/eingrad-gpt-golden
  cp /tmp/eingrad-gpt-golden/model.safetensors tests/golden/gpt/eingrad_gpt.safetensors
"""

import json
import math
import os
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (PyTorch's has no bias=False switch in nanoGPT's days)."""

    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, input):
        return F.layer_norm(input, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        self.flash = config.flash
        if not self.flash:
            # nanoGPT registers the causal mask as a buffer named `bias` without flash.
            T = config.block_size
            self.register_buffer("bias", torch.tril(torch.ones(T, T)).view(1, 1, T, T))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if self.flash:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)
            att = self.attn_dropout(att)
            y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


@dataclass
class GPTConfig:
    block_size: int = 1024
    vocab_size: int = 50304
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True
    flash: bool = True


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        b, t = idx.size()
        assert t <= self.config.block_size
        pos = torch.arange(0, t, dtype=torch.long)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss


def text_loss(model, stoi, text):
    """Mean cross-entropy of text[1:] given text[:-1], in consecutive windows of block_size."""
    ids = [stoi[c] for c in text]
    T = model.config.block_size
    n = len(ids) - 1
    total = 0.0
    with torch.no_grad():
        for s in range(0, n, T):
            m = min(T, n - s)
            x = torch.tensor([ids[s:s + m]])
            y = torch.tensor([ids[s + 1:s + m + 1]])
            _, loss = model(x, y)
            total += loss.item() * m
    return total / n


def main():
    text = open(os.path.join(ROOT, "data", "shakespeare", "input.txt"), encoding="utf-8").read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    vocab = "".join(chars)
    n = len(text)
    val = text[int(n * 0.9):]
    texts = {
        "short": "ROMEO:\nBut soft",
        "long": val[:100],
    }
    expected = {"texts": texts, "files": {}}
    for name, bias, flash, keep_head in [("gpt_bias", True, False, True), ("gpt_nobias", False, True, False)]:
        torch.manual_seed(1337 if bias else 7)
        cfg = GPTConfig(block_size=16, vocab_size=len(chars), n_layer=2, n_head=2, n_embd=16,
                        dropout=0.0, bias=bias, flash=flash)
        model = GPT(cfg).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        if not keep_head:
            del sd["lm_head.weight"]
        meta = {"n_layer": "2", "n_head": "2", "n_embd": "16", "block_size": "16",
                "vocab_size": str(len(chars)), "bias": str(bias), "vocab": vocab, "dropout": "0.0"}
        save_file(sd, os.path.join(HERE, name + ".safetensors"), meta)
        expected["files"][name] = {k: text_loss(model, stoi, t) for k, t in texts.items()}
        print(name, sorted(sd)[:3], "...", len(sd), "tensors", expected["files"][name])

    # The reverse: a checkpoint eingrad wrote, loaded into the PyTorch GPT.
    path = os.path.join(HERE, "eingrad_gpt.safetensors")
    if os.path.exists(path):
        with safe_open(path, "pt") as f:
            meta = f.metadata()
        assert meta["model"] == "gpt" and meta["vocab"] == vocab, meta
        cfg = GPTConfig(block_size=int(meta["block_size"]), vocab_size=int(meta["vocab_size"]),
                        n_layer=int(meta["n_layer"]), n_head=int(meta["n_head"]),
                        n_embd=int(meta["n_embd"]), dropout=0.0, bias=meta["bias"] == "true")
        model = GPT(cfg).eval()
        model.load_state_dict(load_file(path), strict=True)
        expected["files"]["eingrad_gpt"] = {k: text_loss(model, stoi, t) for k, t in texts.items()}
        print("eingrad_gpt", expected["files"]["eingrad_gpt"])
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
