"""Seed 002 in eingrad: xLSTM's log-space decay matrix D~ with a hand-written backward,
checked against autograd (-inf above the diagonal).

The seed notebook (see ../../../shared/SEEDS.md, section 1) with these lines changed:
  * `import torch` -> `import eingrad as torch`; DEVICE = "cpu" (eingrad runs on the CPU).
  * `torch.randn((B, NH, S, 1), ...)` -> the seed's printed draws (`IGATE`, `FGATE` below):
    its random numbers came from a CUDA generator, so its printed values are the inputs.
  * The notebook imports `vlstm_fw_Dtildemat` / `vlstm_fwbw_Dtildemat` from a module it does
    not show; both are written here from the math in SEEDS.md: the forward in tensor ops
    (autograd differentiates it), the second as an `eingrad.autograd.Function` whose
    backward is the O(S) hand-written rule.
  * The seed's printed numbers are asserted, and `eingrad.func.verify_backward` compares the
    hand-written backward with autograd on random cotangents and prints its table.
Run: python examples/python/seed_002.py
"""
import math

import eingrad as torch

DTYPE = torch.float32
B = 2
S = 5
NH = 4
DH = 6
EPS = 0.0

IGATE = [[1.6217, -1.1963, 1.2651, -1.0511, 0.8248], [1.7687, -0.2273, -0.3192, -0.1224, 0.5716],
         [1.7480, 1.5525, -0.0406, 1.0113, 1.5455], [2.1709, -0.0638, 0.3106, -0.2125, 0.0994],
         [0.7163, -0.5652, 0.1756, -0.3835, 0.2200], [-0.3686, -1.3597, 0.2573, 0.0560, 0.3304],
         [-0.1345, 0.9675, 0.8923, 0.5020, 0.1634], [-0.3290, 0.5576, 0.7773, -1.5742, 0.2267]]
FGATE = [[0.0124, -1.0455, -0.0735, 0.0832, -0.5680], [1.9620, -0.3731, 0.5843, -0.4221, 1.5006],
         [0.5582, 1.2511, 0.6232, 0.7075, 1.3565], [0.5134, 1.9529, -1.8601, -0.8365, 0.6902],
         [1.5590, 1.5131, 0.3081, 0.3594, 0.7247], [-0.5370, -1.3131, -1.0852, 1.7549, -0.2841],
         [0.3271, -0.4896, 0.5642, -0.4275, -1.2305], [1.1763, -0.0798, 1.8283, 0.3819, 0.5638]]
# What the seed printed: D~ of head (0,0) row 4, f~ gradients of dmat.sum().
DMAT_00_ROW4 = [-2.1250, -3.5962, -0.4043, -2.0680, 0.8248]
FGRAD = [[0, 2.9597, 3.1102, 2.8753, 2.5532], [0, 2.3688, 2.1476, 3.6239, 0.7294],
         [0, 0.8900, 2.0944, 1.9809, 0.8192], [0, 0.4970, 5.1919, 4.1863, 1.3360],
         [0, 0.7219, 2.5414, 2.4667, 1.3054], [0, 3.1521, 4.4849, 0.8846, 2.2822],
         [0, 2.4800, 2.1754, 3.6317, 3.0956], [0, 2.0798, 0.8306, 2.4341, 1.4506]]


def vlstm_fw_Dtildemat(igate_preacts, fgate_preacts):
    """D~_ij = sum_{j<t<=i} logsigmoid(f~_t) + i~_j for j <= i, -inf above the diagonal."""
    _, _, S, _ = fgate_preacts.shape
    log_fgates = torch.nn.functional.logsigmoid(fgate_preacts)  # (B, NH, S, 1)
    # c_m = sum_{t<m} log f_t for m = 0..S, as a column
    cum = torch.cat([torch.zeros_like(log_fgates[:, :, :1]), log_fgates.cumsum(dim=-2)], dim=-2)
    c = cum[:, :, 1:]  # c_{i+1}, (B, NH, S, 1)
    log_fg_matrix = c - c.transpose(-2, -1)  # c_{i+1} - c_{j+1}
    ltr = torch.tril(torch.ones((S, S), dtype=igate_preacts.dtype))
    # the forget part selects the lower triangle; the input part is added everywhere
    log_fg_matrix = torch.where(ltr == 1, log_fg_matrix, -math.inf)
    return log_fg_matrix + igate_preacts.transpose(-2, -1)


class DTildeMat(torch.autograd.Function):
    """The same forward, with the hand-written backward."""

    @staticmethod
    def forward(ctx, igate_preacts, fgate_preacts):
        ctx.save_for_backward(fgate_preacts)
        with torch.no_grad():
            return vlstm_fw_Dtildemat(igate_preacts, fgate_preacts)

    @staticmethod
    def backward(ctx, grad_dtilde):
        (fgate_preacts,) = ctx.saved_tensors
        S = grad_dtilde.shape[-1]
        # d i~_j = sum_i G_ij over all rows (the -inf mask is added, so no masking)
        grad_igate = grad_dtilde.sum(dim=-2).unsqueeze(-1)
        # G restricted to j < i; r_t = sum_{j<t} G_tj, q_t = sum_{i>t} G_it
        strict = torch.tril(torch.ones((S, S), dtype=grad_dtilde.dtype), diagonal=-1)
        g = grad_dtilde * strict
        r_minus_q = g.sum(dim=-1) - g.sum(dim=-2)
        # d fbar_k = sum_{t>=k} (r_t - q_t): a reversed cumulative sum
        dfbar = r_minus_q.sum(dim=-1, keepdim=True) - r_minus_q.cumsum(dim=-1) + r_minus_q
        grad_fgate = dfbar.unsqueeze(-1) * torch.sigmoid(-fgate_preacts)
        return grad_igate, grad_fgate


def vlstm_fwbw_Dtildemat(igate_preacts, fgate_preacts):
    return DTildeMat.apply(igate_preacts, fgate_preacts)


igate_preacts = torch.tensor(IGATE, dtype=DTYPE).view(B, NH, S, 1)
fgate_preacts = torch.tensor(FGATE, dtype=DTYPE).view(B, NH, S, 1)

# Torch autograd
igate_preacts_pt = igate_preacts.clone().detach().requires_grad_(True)
fgate_preacts_pt = fgate_preacts.clone().detach().requires_grad_(True)
dmat_pt = vlstm_fw_Dtildemat(igate_preacts_pt, fgate_preacts_pt)
print(dmat_pt[0, 0])
print("dmat.sum() =", dmat_pt.sum().item())
dmat_pt.sum().backward()
print("igate grad per head:", igate_preacts_pt.grad.view(B * NH, S).tolist()[0])
print("fgate grad head (0,0):", [round(v, 4) for v in fgate_preacts_pt.grad.view(B * NH, S).tolist()[0]])

# Own backward
igate_preacts_obw = igate_preacts.clone().detach().requires_grad_(True)
fgate_preacts_obw = fgate_preacts.clone().detach().requires_grad_(True)
dmat_obw = vlstm_fwbw_Dtildemat(igate_preacts_obw, fgate_preacts_obw)
dmat_obw.sum().backward()

atol = 1e-6
rtol = 1e-6
forward_match = torch.allclose(dmat_obw, dmat_pt, atol=atol, rtol=rtol)
igate_match = torch.allclose(igate_preacts_obw.grad, igate_preacts_pt.grad, atol=atol, rtol=rtol)
fgate_match = torch.allclose(fgate_preacts_obw.grad, fgate_preacts_pt.grad, atol=atol, rtol=rtol)
print(f"Forward match: {forward_match}")
print(f"igate preact match: {igate_match}")
print(f"fgate pract match: {fgate_match}")

# The seed's numbers
assert forward_match and igate_match and fgate_match
assert torch.allclose(dmat_pt[0, 0, 4], torch.tensor(DMAT_00_ROW4), atol=2e-4)
upper = [dmat_pt[b, h, i, j].item() for b in range(B) for h in range(NH)
         for i in range(S) for j in range(i + 1, S)]
assert all(v == -math.inf for v in upper), "-inf above the diagonal"
assert all(v == S for v in igate_preacts_pt.grad.view(-1).tolist()), "every i~ gradient is S"
assert torch.allclose(fgate_preacts_pt.grad.view(B * NH, S), torch.tensor(FGRAD), atol=2e-4)
for h in range(B * NH):  # d/df~_k = k (S - k) sigmoid(-f~_k)
    for k in range(S):
        want = k * (S - k) / (1 + math.exp(FGATE[h][k]))
        assert abs(fgate_preacts_pt.grad.view(B * NH, S)[h, k].item() - want) < 1e-5

# The hand-written backward against autograd, in float64 on random cotangents
report = torch.func.verify_backward(
    vlstm_fwbw_Dtildemat, vlstm_fw_Dtildemat,
    (igate_preacts.double(), fgate_preacts.double()))
print(report)
assert report.passed
print("seed 002: PASS")
