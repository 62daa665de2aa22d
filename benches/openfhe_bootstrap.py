"""Time OpenFHE's CKKS bootstrapping (the `openfhe` wheel, run under CPython
3.10) for the side-by-side table of benches/bootstrap_vs_openfhe.sh.

Follows OpenFHE's own bootstrapping example (simple-ckks-bootstrapping:
FLEXIBLEAUTO, first modulus 60 bits, scaling moduli 59 bits, level budget
[4, 4], 10 levels left after a bootstrap) with the ring, slots, secret and
security given on the command line. Inputs are uniform in [-1, 1] (the same
generator seed as nothing: OpenFHE's own RNG is not ours; the precision is
over all slots). Prints one JSON object.

Usage: python benches/openfhe_bootstrap.py --log-n 16 --slots 32768 \\
           --secret sparse --security 128 --threads 1 [--reps 3]
Set OMP_NUM_THREADS before starting Python (the shell script does).
"""
import argparse
import json
import math
import os
import random
import resource
import statistics
import tempfile
import time

import openfhe as fhe


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log-n", type=int, required=True, help="log2 of the ring degree")
    ap.add_argument("--slots", type=int, required=True, help="slots to bootstrap (N/2 for full slots)")
    ap.add_argument("--secret", choices=["uniform", "sparse"], default="sparse",
                    help="uniform ternary, or OpenFHE's SPARSE_TERNARY (its example's choice)")
    ap.add_argument("--security", choices=["128", "none"], default="128",
                    help="HEStd_128_classic, or HEStd_NotSet for toy rings")
    ap.add_argument("--levels-after", type=int, default=10, help="levels left after a bootstrap")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()

    params = fhe.CCParamsCKKSRNS()
    dist = fhe.SecretKeyDist.SPARSE_TERNARY if a.secret == "sparse" else fhe.SecretKeyDist.UNIFORM_TERNARY
    params.SetSecretKeyDist(dist)
    if a.security == "128":
        params.SetSecurityLevel(fhe.SecurityLevel.HEStd_128_classic)
    else:
        params.SetSecurityLevel(fhe.SecurityLevel.HEStd_NotSet)
    params.SetRingDim(1 << a.log_n)
    params.SetScalingTechnique(fhe.ScalingTechnique.FLEXIBLEAUTO)
    params.SetScalingModSize(59)
    params.SetFirstModSize(60)
    level_budget = [4, 4]
    depth = a.levels_after + fhe.CryptoContext.GetBootstrapDepth(level_budget, dist)
    params.SetMultiplicativeDepth(depth)
    cc = fhe.GenCryptoContext(params)
    for feature in (fhe.PKESchemeFeature.PKE, fhe.PKESchemeFeature.KEYSWITCH,
                    fhe.PKESchemeFeature.LEVELEDSHE, fhe.PKESchemeFeature.ADVANCEDSHE,
                    fhe.PKESchemeFeature.FHE):
        cc.Enable(feature)
    n = cc.GetRingDimension()
    cc.EvalBootstrapSetup(level_budget, [0, 0], a.slots)
    t = time.perf_counter()
    keys = cc.KeyGen()
    cc.EvalMultKeyGen(keys.secretKey)
    cc.EvalBootstrapKeyGen(keys.secretKey, a.slots)
    keygen_s = time.perf_counter() - t

    key_bytes = 0
    with tempfile.TemporaryDirectory() as d:
        for name, fn in (("mult", fhe.CryptoContext.SerializeEvalMultKey),
                         ("auto", fhe.CryptoContext.SerializeEvalAutomorphismKey)):
            # Binary serialization: about the keys' bytes in memory.
            path = os.path.join(d, name)
            if fn(path, fhe.BINARY, ""):
                key_bytes += os.path.getsize(path)

    rng = random.Random(41)
    xs = [rng.uniform(-1.0, 1.0) for _ in range(a.slots)]
    pt = cc.MakeCKKSPackedPlaintext(xs, 1, depth - 1, None, a.slots)
    pt.SetLength(a.slots)
    ct = cc.Encrypt(keys.publicKey, pt)
    times, out = [], None
    for _ in range(max(1, a.reps)):
        t = time.perf_counter()
        out = cc.EvalBootstrap(ct)
        times.append(time.perf_counter() - t)
    res = cc.Decrypt(out, keys.secretKey)
    res.SetLength(a.slots)
    got = res.GetRealPackedValue()
    errs = [abs(x - y) for x, y in zip(xs, got)]
    worst, mean = max(errs), sum(errs) / len(errs)
    print(json.dumps({
        "library": f"OpenFHE {getattr(fhe, '__version__', '1.6.1')} (PyPI wheel)",
        "n": n, "slots": a.slots, "threads": a.threads, "secret": a.secret,
        "security": a.security, "keygen_s": keygen_s, "key_mib": key_bytes / 2**20,
        "bootstrap_s": statistics.median(times),
        "levels_left": depth - out.GetLevel(),
        "min_bits": -math.log2(worst), "mean_bits": -math.log2(mean),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
