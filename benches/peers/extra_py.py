"""Torch rows our issues ask for that `../shared/bench/peers` does not measure.

Usage: extra_py.py THREADS. Prints JSON lines like the shared peer workers:
- mlp_784_256_10_backward: MLP 784-256-10 (ReLU), batch 128, cross-entropy; backward only,
  replayed on a retained graph (`loss.backward(retain_graph=True)`), grads zeroed each call.
- mlp_784_256_10_fwd_bwd: the same model, forward + backward.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../shared/bench/peers"))
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _common import bench, emit  # noqa: E402

threads = int(sys.argv[1])
torch.set_num_threads(threads)
torch.manual_seed(0)

model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
x = torch.randn(128, 784)
y = (torch.arange(128) * 7 + 3) % 10
loss = F.cross_entropy(model(x), y)


def backward_only():
    model.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)


t, r = bench(backward_only, min_reps=20, min_time=0.5)
emit(lib="torch", workload="mlp_784_256_10_backward", threads=threads, median_s=t, reps=r)


def fwd_bwd():
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()


t, r = bench(fwd_bwd, min_reps=20, min_time=0.5)
emit(lib="torch", workload="mlp_784_256_10_fwd_bwd", threads=threads, median_s=t, reps=r)
