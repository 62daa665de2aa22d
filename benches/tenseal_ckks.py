"""Time TenSEAL (SEAL underneath) CKKS primitives single-threaded, for the
side-by-side ratios of `slaf-he bench ckks`.

Usage: bash benches/tenseal_ckks.sh   (creates target/venv-tenseal, installs tenseal==0.3.18)
Prints one line per op: `op N median_us`, then a JSON object on the last line.
"""
import json
import statistics
import sys
import time

import tenseal as ts


def median_us(reps, f):
    t = []
    for _ in range(reps):
        s = time.perf_counter()
        f()
        t.append((time.perf_counter() - s) * 1e6)
    return statistics.median(t)


def bench(n, bits, scale_bits, reps):
    out = []
    def ctx():
        c = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=n, coeff_mod_bit_sizes=bits, n_threads=1)
        c.global_scale = 2 ** scale_bits
        return c
    out.append(("keygen_secret_public", median_us(min(reps, 5), ctx)))
    c = ctx()
    out.append(("keygen_relin", median_us(min(reps, 5), c.generate_relin_keys)))
    out.append(("keygen_galois", median_us(min(reps, 3), c.generate_galois_keys)))
    v = [((i * 7919) % 1000) / 1000.0 - 0.5 for i in range(n // 2)]
    x = ts.ckks_vector(c, v)
    out.append(("encrypt", median_us(reps, lambda: ts.ckks_vector(c, v))))
    out.append(("decrypt", median_us(reps, lambda: x.decrypt())))
    out.append(("add", median_us(reps, lambda: x + x)))
    out.append(("mul_plain", median_us(reps, lambda: x * v)))
    out.append(("mul_relin_rescale", median_us(reps, lambda: x * x)))
    # TenSEAL exposes no single rotation on CKKSVector: sum() performs
    # log2(slots) rotate-and-add steps, so one rotation ~ sum() / log2(slots)
    # (the add is negligible next to the key switch).
    steps = (n // 2).bit_length() - 1
    out.append(("rotate", median_us(reps, x.sum) / steps))
    return out


def main():
    reps = 5 if "--quick" in sys.argv else 15
    rows = []
    for n, bits, s in [(8192, [31] + [26] * 6 + [31], 26), (16384, [40] + [26] * 11 + [40], 26)]:
        for op, us in bench(n, bits, s, reps):
            rows.append({"op": op, "n": n, "median_us": us})
            print(f"{op:<22} {n:>6} {us:>14.1f}", flush=True)
    print(json.dumps({"ops": rows}))


if __name__ == "__main__":
    main()
