#!/usr/bin/env python3
"""The PyTorch peer of `syncsim bench`: the same training steps, timed in one run.

For each case (an MLP 784-256-10 at batch 64 with SGD and with AdamW, the character
transformer C64 L2 T64 at batch 16 with AdamW), the script alternates between `syncsim bench`
on that case (its best step time of several repetitions) and the same step in PyTorch (batch
gather, forward, cross-entropy, backward, optimizer step; best of several timed chunks), one
thread each, and prints the median over the repetitions of each and of their ratio, beside
syncsim's step over OpenBLAS's matrix products from the same syncsim runs.

    python3 bench/torch_peer.py [--syncsim build/syncsim] [--reps 5]

Needs Debian's python3-torch (`./setup.sh bench` installs it). The ratios are of host
time on this machine, in this run; the absolute times are not comparable across machines.
"""
import argparse
import math
import os
import statistics
import subprocess
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.exit("torch_peer: PyTorch is not installed (Debian: apt-get install python3-torch, "
             "or ./setup.sh bench)")

CASES = [  # syncsim bench's case name, its optimizer, the PyTorch builder
    ("mlp 784-256-10", "sgd", "mlp"),
    ("mlp 784-256-10", "adamw", "mlp"),
    ("transformer C64 L2 T64", "adamw", "transformer"),
]


def syncsim_step(binary, name, opt):
    """syncsim's step and step / OpenBLAS products for case `name` (ms, ratio)."""
    out = subprocess.run([binary, "bench", "--opt", opt, "--only", name], check=True,
                         capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1")).stdout
    for line in out.splitlines():
        if line[:26].strip() == name:
            f = line[26:].split()
            return float(f[2]), float(f[10])
    sys.exit(f"torch_peer: no line for '{name}' in syncsim bench's output:\n{out}")


class Block(nn.Module):
    def __init__(self, C, NH):
        super().__init__()
        self.NH = NH
        self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.fc, self.fcproj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x, mask):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.NH, C // self.NH).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.NH))
        att = F.softmax(att.masked_fill(mask[:T, :T] == 0, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.proj(y)
        return x + self.fcproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    """syncsim's transformer: GPT-2's architecture (pre-LN, learned positions, tanh GELU,
    untied head)."""

    def __init__(self, V=96, T=64, C=64, NH=4, L=2):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.blocks = nn.ModuleList(Block(C, NH) for _ in range(L))
        self.lnf, self.head = nn.LayerNorm(C), nn.Linear(C, V, bias=False)
        self.register_buffer("mask", torch.tril(torch.ones(T, T)))

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for b in self.blocks:
            x = b(x, self.mask)
        return self.head(self.lnf(x))


def torch_case(kind, opt_name):
    """A step function for the case, on data of the right shape."""
    g = torch.Generator().manual_seed(1)
    if kind == "mlp":
        model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
        X, Y = torch.randn(4096, 784, generator=g), torch.randint(10, (4096,), generator=g)
        idx = (torch.arange(64) * 7) % 4096

        def batch():
            return X[idx], Y[idx]
    else:
        model = GPT()
        text = torch.randint(96, (4096 + 65,), generator=g)
        starts = (torch.arange(16) * 7) % 4096
        rows = starts[:, None] + torch.arange(65)[None, :]

        def batch():
            chunk = text[rows]
            return chunk[:, :-1], chunk[:, 1:]
    if opt_name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)

    def step():
        x, y = batch()
        out = model(x)
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def torch_step_ms(step, chunks=5, min_s=0.1):
    """The best ms per step over `chunks` timed chunks of about min_s each."""
    t0 = time.perf_counter()
    step(), step(), step()
    n = max(1, int(min_s / max((time.perf_counter() - t0) / 3, 1e-9)))
    best = math.inf
    for _ in range(chunks):
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e3


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--syncsim", default=os.path.join(here, "..", "build", "syncsim"))
    ap.add_argument("--reps", type=int, default=5, help="interleaved repetitions (default 5)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    print(f"PyTorch {torch.__version__}, 1 thread; syncsim bench, 1 thread; median of {a.reps} "
          "interleaved repetitions\n")
    print(f"{'case':<34} {'syncsim ms':>10} {'torch ms':>9} {'syncsim/torch':>14} "
          f"{'step/OpenBLAS':>14}")
    for name, opt, kind in CASES:
        step = torch_case(kind, opt)
        ours, theirs, ratios, blas = [], [], [], []
        for _ in range(a.reps):
            ms, st_bl = syncsim_step(a.syncsim, name, opt)
            tms = torch_step_ms(step)
            ours.append(ms), theirs.append(tms), ratios.append(ms / tms), blas.append(st_bl)
        label = f"{name} {opt}"
        print(f"{label:<34} {statistics.median(ours):>10.3f} {statistics.median(theirs):>9.3f} "
              f"{statistics.median(ratios):>14.3f} {statistics.median(blas):>14.3f}", flush=True)


if __name__ == "__main__":
    main()
