#!/usr/bin/env python3
"""PyTorch CPU reference for `slaf-he train` epoch times (issue 5, speed).

Trains CNN1 / CNN2 / CryptoNets for one epoch of the SPEC.md §4 recipe
(SGD momentum, weight decay 1e-4, OneCycleLR max_lr 0.2 ..., batch 64) on
the vendored MNIST with a fixed number of threads and prints the epoch time,
so that the Rust engine can be compared on the same machine:

    benches/torch_epoch.sh --model cnn2 --act relu --threads 2
    cargo run --release -- train --model cnn2 --act relu --epochs 1 --threads 2 -q

Run it through torch_epoch.sh, which creates benches/.venv-torch with
`pip install torch numpy` (CPU wheels) on first use.
"""
import argparse, gzip, struct, time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parent.parent / "data" / "mnist"


def idx(name):
    raw = gzip.open(ROOT / name).read()
    magic, n = struct.unpack(">II", raw[:8])
    if magic == 2051:
        r, c = struct.unpack(">II", raw[8:16])
        return np.frombuffer(raw, np.uint8, offset=16).reshape(n, 1, r, c).astype(np.float32) / 255.0
    return np.frombuffer(raw, np.uint8, offset=8).astype(np.int64)


class Slaf(nn.Module):
    def __init__(self, degree=3):
        super().__init__()
        self.c = nn.Parameter(torch.zeros(degree + 1))

    def forward(self, x):
        y = torch.zeros_like(x)
        for a in reversed(self.c):
            y = y * x + a
        return y


class Square(nn.Module):
    def forward(self, x):
        return x * x


def act(name):
    return {"relu": nn.ReLU, "x2": Square, "slaf": Slaf}[name]()


def model(arch, a):
    if arch == "cnn1":
        return nn.Sequential(nn.Conv2d(1, 4, 7, 3), act(a), nn.Flatten(), nn.Linear(256, 64), act(a), nn.Linear(64, 10))
    if arch == "cnn2":
        return nn.Sequential(nn.Conv2d(1, 20, 5, 2, 1), nn.BatchNorm2d(20), act(a), nn.AvgPool2d(3, 2, 1),
                             nn.Conv2d(20, 50, 5), nn.AvgPool2d(3, 2, 1), nn.Flatten(), nn.Linear(200, 100),
                             nn.BatchNorm1d(100), act(a), nn.Linear(100, 10))
    return nn.Sequential(nn.Conv2d(1, 20, 5, 2, 1), act(a), nn.AvgPool2d(3, 1, 1), nn.Conv2d(20, 50, 5, 2),
                         nn.AvgPool2d(3, 1, 1), nn.Flatten(), nn.Linear(1250, 100), act(a), nn.Linear(100, 10))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="cnn1", choices=["cnn1", "cnn2", "cryptonets"])
    p.add_argument("--act", default="relu", choices=["relu", "x2", "slaf"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(73)
    x = torch.from_numpy(idx("train-images.idx3-ubyte.gz"))
    y = torch.from_numpy(idx("train-labels.idx1-ubyte.gz"))
    m = model(args.model, args.act)
    opt = torch.optim.SGD(m.parameters(), lr=0.02, momentum=0.95, weight_decay=1e-4)
    steps = (len(x) + 63) // 64
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=steps * args.epochs, pct_start=0.43,
                                                div_factor=10, final_div_factor=1000, three_phase=True)
    loss_fn = nn.CrossEntropyLoss()
    clip = args.act != "relu"
    for epoch in range(args.epochs):
        perm = torch.randperm(len(x))
        m.train()
        t0 = time.perf_counter()
        for i in range(steps):
            b = perm[i * 64:(i + 1) * 64]
            opt.zero_grad()
            loss = loss_fn(m(x[b]), y[b])
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
            sched.step()
        print(f"torch {args.model} {args.act} epoch {epoch + 1}: {time.perf_counter() - t0:.2f} s "
              f"({args.threads} threads, loss {loss.item():.4f})")


if __name__ == "__main__":
    main()
