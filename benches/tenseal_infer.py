"""Per-image encrypted inference with TenSEAL, the original notebooks'
pipeline, on the weights our crate trained, beside slaf-he's per-image
engine on the same images, single thread, with the ratio.

The inference form (BatchNorm folded, CNN2/CryptoNets block collapsed to
3380 -> 100) is read from the weights file itself (its "inference" object,
the same tensors `InferenceModel::load` reads). TenSEAL pipeline, as in the
original CNN notebooks:

    enc_x, windows_nb = ts.im2col_encoding(ctx, image, k, k, stride)
    channels = [enc_x.conv2d_im2col(kernel, windows_nb) + bias for each out channel]
    enc_x = ts.CKKSVector.pack_vectors(channels)
    enc_x.square_()            # x2 models; SLAF: enc_x = enc_x.polyval(coeffs)
    enc_x = enc_x.mm(W1.T) + b1
    enc_x.square_()            # (or polyval)
    enc_x = enc_x.mm(W2.T) + b2
    logits = enc_x.decrypt()

CNN2/CryptoNets have conv padding 1, which im2col_encoding lacks: the image
is zero-padded to 30x30 first (same windows). Parameters (SPEC §5):
CNN1-X2 N=8192 [31, 26x6, 31], everything else N=16384 [40, 26x11, 40],
scale 2^26, n_threads=1. Timed: encryption + evaluation + decryption per
image (key generation excluded, as for slaf-he).

Usage (via benches/tenseal_infer.sh, which builds slaf-he and the venv):
    python benches/tenseal_infer.py WEIGHTS.json.gz [N_IMAGES] [--ours-only|--tenseal-only]
"""
import gzip
import json
import os
import re
import struct
import subprocess
import sys
import time

import numpy as np


def load_mnist_test(n, root):
    with gzip.open(os.path.join(root, "t10k-images.idx3-ubyte.gz"), "rb") as f:
        _, count, rows, cols = struct.unpack(">IIII", f.read(16))
        imgs = np.frombuffer(f.read(count * rows * cols), dtype=np.uint8)
        imgs = imgs.reshape(count, rows, cols)[:n].astype(np.float64) / 255.0
    with gzip.open(os.path.join(root, "t10k-labels.idx1-ubyte.gz"), "rb") as f:
        f.read(8)
        labels = np.frombuffer(f.read(), dtype=np.uint8)[:n]
    return imgs, labels


def plain_forward(inf, img):
    g = inf["conv"]["geom"]
    k, s, p, oc = g["k"], g["stride"], g["pad"], g["out_c"]
    x = np.pad(img, p)
    oh = (x.shape[0] - k) // s + 1
    w = np.array(inf["conv"]["weight"]).reshape(oc, k, k)
    b = np.array(inf["conv"]["bias"])
    y = np.zeros((oc, oh, oh))
    for oy in range(oh):
        for ox in range(oh):
            patch = x[oy * s:oy * s + k, ox * s:ox * s + k]
            y[:, oy, ox] = (w * patch).sum(axis=(1, 2)) + b
    h = act(inf["act1"], y.reshape(-1))
    d1 = inf["dense1"]
    h = np.array(d1["weight"]).reshape(d1["rows"], d1["cols"]) @ h + np.array(d1["bias"])
    h = act(inf["act2"], h)
    f2 = inf["fc2"]
    return np.array(f2["weight"]).reshape(f2["rows"], f2["cols"]) @ h + np.array(f2["bias"])


def act(a, v):
    c = a["coeffs"]
    return sum(ci * v ** i for i, ci in enumerate(c))


def is_square(a):
    c = list(a["coeffs"])
    while c and c[-1] == 0:
        c.pop()
    return c == [0.0, 0.0, 1.0]


def tenseal_run(inf, imgs, n1):
    import tenseal as ts
    g = inf["conv"]["geom"]
    k, s, p, oc = g["k"], g["stride"], g["pad"], g["out_c"]
    if n1:
        ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=8192,
                         coeff_mod_bit_sizes=[31, 26, 26, 26, 26, 26, 26, 31], n_threads=1)
    else:
        ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=16384,
                         coeff_mod_bit_sizes=[40] + [26] * 11 + [40], n_threads=1)
    ctx.global_scale = 2 ** 26
    ctx.generate_galois_keys()
    kernels = np.array(inf["conv"]["weight"]).reshape(oc, k, k).tolist()
    cbias = inf["conv"]["bias"]
    d1, f2 = inf["dense1"], inf["fc2"]
    w1 = np.array(d1["weight"]).reshape(d1["rows"], d1["cols"]).T.tolist()
    b1 = d1["bias"]
    w2 = np.array(f2["weight"]).reshape(f2["rows"], f2["cols"]).T.tolist()
    b2 = f2["bias"]

    def activation(a, v):
        if is_square(a):
            v.square_()
            return v
        return v.polyval(list(a["coeffs"]))

    out, times = [], []
    for img in imgs:
        x = np.pad(img, p).tolist()
        t0 = time.perf_counter()
        enc_x, windows_nb = ts.im2col_encoding(ctx, x, k, k, s)
        chans = [enc_x.conv2d_im2col(kern, windows_nb) + b for kern, b in zip(kernels, cbias)]
        v = ts.CKKSVector.pack_vectors(chans)
        v = activation(inf["act1"], v)
        v = v.mm(w1) + b1
        v = activation(inf["act2"], v)
        v = v.mm(w2) + b2
        logits = v.decrypt()
        times.append(time.perf_counter() - t0)
        out.append(np.array(logits[:10]))
    return out, times


def ours_run(weights, n):
    exe = os.environ.get("SLAF_HE_LATENCY_EXE", "target/release/examples/per_image_latency")
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    res = subprocess.run([exe, weights, str(n)], check=True, capture_output=True, text=True, env=env)
    lines = res.stdout.strip().splitlines()
    mean = next(l for l in lines if l.startswith("mean "))
    ms = float(re.match(r"mean ([0-9.]+) ms/image", mean).group(1))
    err = float(re.search(r"max logit error ([0-9.e+-]+)", mean).group(1))
    return ms / 1e3, err, [l for l in lines if l.startswith("N=") or l.startswith("keys")]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    if not args:
        print(__doc__)
        sys.exit(2)
    weights = args[0]
    n = int(args[1]) if len(args) > 1 else 2
    with gzip.open(weights, "rt") as f:
        wf = json.load(f)
    inf = wf["inference"]
    name = os.path.basename(weights).replace(".json.gz", "")
    n1 = name == "cnn1-x2"
    root = os.environ.get("SLAF_HE_DATA", "data/mnist")
    imgs, labels = load_mnist_test(n, root)
    plain = [plain_forward(inf, im) for im in imgs]
    print(f"model {name}: {n} test images, single thread")
    ours_s = None
    if "--tenseal-only" not in flags:
        ours_s, ours_err, info = ours_run(weights, n)
        for l in info:
            print("  slaf-he:", l)
        print(f"slaf-he per image: {ours_s:.3f} s (max logit error {ours_err:.2e})")
    if "--ours-only" not in flags:
        out, times = tenseal_run(inf, imgs, n1)
        err = max(float(np.abs(o - p).max()) for o, p in zip(out, plain))
        agree = sum(int(np.argmax(o) == np.argmax(p)) for o, p in zip(out, plain))
        ts_s = float(np.mean(times))
        print(f"TenSEAL per image: {ts_s:.3f} s (per image: {', '.join(f'{t:.2f}' for t in times)}; "
              f"max logit error {err:.2e}; argmax agreement {agree}/{n})")
        if ours_s is not None:
            print(f"ratio slaf-he / TenSEAL = {ours_s / ts_s:.4f} (TenSEAL / slaf-he = {ts_s / ours_s:.1f}x)")
            print(json.dumps({"model": name, "images": n, "slaf_he_s": ours_s, "tenseal_s": ts_s,
                              "speedup": ts_s / ours_s, "slaf_he_max_logit_error": ours_err,
                              "tenseal_max_logit_error": err}))


if __name__ == "__main__":
    main()
