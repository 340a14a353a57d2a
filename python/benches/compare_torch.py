"""eingrad from Python against PyTorch from the same Python, side by side in one run.

Workloads (../../../shared/bench/WORKLOADS.md):
  chain100  100 elementwise ops (x1.01, +0.1, sin, tanh, repeated) on a (10,) tensor, then
            sum and backward: the per-op overhead of eager autograd as a Python user sees it.
  jac_mm    the Jacobian of seed 003's mm case `ij,jk->ik` with respect to x (2x3, w 3x4):
            eingrad.func.jacrev against torch.func.jacrev.
Each workload alternates the two libraries in rounds and reports the median time of each and
their ratio (torch time / eingrad time: above 1 means eingrad is faster). Run it on a quiet
machine (no build or test on the cores) in an environment with both packages:
    python python/benches/compare_torch.py [--rounds N]
"""
import argparse
import platform
import statistics
import time

import eingrad
import torch


def chain100(lib, x0):
    x = x0.detach().requires_grad_(True)
    y = x
    for _ in range(25):
        y = (y * 1.01 + 0.1).sin().tanh()
    y.sum().backward()
    return x.grad


def jac_mm_eingrad(x, w):
    return eingrad.func.jacrev(lambda x: eingrad.einsum("ij,jk->ik", x, w))(x)


def jac_mm_torch(x, w):
    return torch.func.jacrev(lambda x: torch.einsum("ij,jk->ik", x, w))(x)


def timed(fn, inner):
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def compare(name, fa, fb, inner, rounds, unit_div=1.0, unit="us"):
    fa(), fb()  # warm up
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(timed(fa, inner))
        tb.append(timed(fb, inner))
    a, b = statistics.median(ta), statistics.median(tb)
    print(f"{name:<10} eingrad {a * 1e6 / unit_div:9.2f} {unit}   torch {b * 1e6 / unit_div:9.2f} {unit}"
          f"   torch/eingrad = {b / a:5.2f}x")
    return b / a


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args()
    torch.set_num_threads(1)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"CPU: {cpu}; torch {torch.__version__} ({torch.get_num_threads()} thread), eingrad {eingrad.__version__}")

    # chain100: per op (100 ops + sum + backward, divided by 100)
    xe = eingrad.randn(10, seed=0)
    xt = torch.from_numpy(xe.numpy().copy())
    ge, gt = chain100(eingrad, xe), chain100(torch, xt)
    assert abs(ge.numpy() - gt.numpy()).max() < 1e-4, "chain100 gradients differ"
    compare("chain100", lambda: chain100(eingrad, xe), lambda: chain100(torch, xt),
            inner=20, rounds=args.rounds, unit_div=100, unit="us/op")

    # jac_mm
    xe, we = eingrad.randn(2, 3, seed=1), eingrad.randn(3, 4, seed=2)
    xt, wt = torch.from_numpy(xe.numpy().copy()), torch.from_numpy(we.numpy().copy())
    je, jt = jac_mm_eingrad(xe, we), jac_mm_torch(xt, wt)
    assert abs(je.numpy() - jt.numpy()).max() < 1e-5, "jacobians differ"
    compare("jac_mm", lambda: jac_mm_eingrad(xe, we), lambda: jac_mm_torch(xt, wt),
            inner=50, rounds=args.rounds)


if __name__ == "__main__":
    main()
