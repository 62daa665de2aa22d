#!/usr/bin/env python3
"""PyTorch CPU reference for `slaf-he train` epoch times (issue 5, speed).

Trains CNN1 / CNN2 / CryptoNets for one epoch of the SPEC.md §4 recipe
(SGD momentum, weight decay 1e-4, OneCycleLR max_lr 0.2 ..., batch 64) on
the vendored MNIST with a fixed number of threads and prints the epoch time,
so that the Rust engine can be compared on the same machine:

    benches/torch_epoch.sh --model cnn2 --act relu --threads 2
    cargo run --release -- train --model cnn2 --act relu --epochs 1 --threads 2 -q

With --eval it also measures the recipe's accuracy: Kaiming-normal conv
init as slaf-he's default, per-batch OneCycle over all epochs, gradient-norm
clipping 1.0 for polynomial activations, and the test accuracy in eval mode
printed as a JSON object on the last line (the seed study of
results/training/seeds.sh compares it with ours):

    benches/torch_epoch.sh --model cnn1 --act slaf --epochs 30 --seed 74 --eval

Run it through torch_epoch.sh, which creates benches/.venv-torch with
`pip install torch numpy` (CPU wheels) on first use.
"""
import argparse, gzip, json, struct, time
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
    p.add_argument("--seed", type=int, default=73)
    p.add_argument("--eval", action="store_true", help="Kaiming conv init, per-epoch test accuracy, JSON summary")
    p.add_argument("--print-version", action="store_true", help="print torch's version and exit")
    args = p.parse_args()
    if args.print_version:
        print(torch.__version__)
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x = torch.from_numpy(idx("train-images.idx3-ubyte.gz"))
    y = torch.from_numpy(idx("train-labels.idx1-ubyte.gz"))
    m = model(args.model, args.act)
    if args.eval:
        xt = torch.from_numpy(idx("t10k-images.idx3-ubyte.gz"))
        yt = torch.from_numpy(idx("t10k-labels.idx1-ubyte.gz"))
        for layer in m.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    t_start = time.perf_counter()
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
              f"({args.threads} threads, loss {loss.item():.4f})", flush=True)
        if not torch.isfinite(loss):
            raise SystemExit(f"diverged: non-finite loss in epoch {epoch + 1}")
        if args.eval:
            acc = test_accuracy(m, xt, yt)
            print(f"torch {args.model} {args.act} epoch {epoch + 1}: test acc {100 * acc:.2f}%", flush=True)
    if args.eval:
        print(json.dumps({"engine": "torch " + torch.__version__, "model": args.model, "act": args.act,
                          "seed": args.seed, "epochs": args.epochs, "test_accuracy": acc,
                          "train_seconds": round(time.perf_counter() - t_start, 2)}))


def test_accuracy(m, xt, yt):
    m.eval()
    with torch.no_grad():
        correct = sum((m(xt[i:i + 1000]).argmax(1) == yt[i:i + 1000]).sum().item() for i in range(0, len(xt), 1000))
    m.train()
    return correct / len(xt)


if __name__ == "__main__":
    main()
