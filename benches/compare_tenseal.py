"""Side-by-side CKKS timings in one run: slaf-he (`bench ckks --json`) and
TenSEAL 0.3.18 (benches/tenseal_ckks.py), both single-threaded, with the
ratio ours / TenSEAL (below 1.0 = we are faster).

Usage: bash benches/compare_tenseal.sh [--quick]
"""
import json
import subprocess
import sys

quick = ["--quick"] if "--quick" in sys.argv else []
ours = subprocess.run(["./target/release/slaf-he", "bench", "ckks", "--json", "--threads", "1"] + quick,
                      check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
theirs = subprocess.run([sys.executable, "benches/tenseal_ckks.py"] + quick,
                        check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
o = {(r["op"], r["n"]): r["median_us"] for r in json.loads(ours)["ops"]}
t = {(r["op"], r["n"]): r["median_us"] for r in json.loads(theirs)["ops"]}
print(f"{'op':<22} {'N':>6} {'slaf-he ms':>11} {'TenSEAL ms':>11} {'ratio':>7}")
for key in sorted(o, key=lambda k: (k[1], k[0])):
    if key in t:
        note = " (TenSEAL: sum()/log2 slots)" if key[0] == "rotate" else (
            " (TenSEAL encodes the plaintext too)" if key[0] == "mul_plain" else (
            " (TenSEAL: all rotation keys; ours: one)" if key[0] == "keygen_galois" else ""))
        print(f"{key[0]:<22} {key[1]:>6} {o[key]/1e3:>11.2f} {t[key]/1e3:>11.2f} {o[key]/t[key]:>7.2f}{note}")
