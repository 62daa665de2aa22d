"""Side-by-side CKKS timings in one run: slaf-he (`bench ckks --json`) and
TenSEAL 0.3.18 (benches/tenseal_ckks.py), both single-threaded, with the
ratio ours / TenSEAL (below 1.0 = we are faster).

Usage: bash benches/compare_tenseal.sh [--quick] [--out FILE.md]

SLAF_HE_BIN names the slaf-he binary (default ./target/release/slaf-he),
e.g. one built with `cargo build --release --no-default-features` to time
the AVX2 kernels on an AVX-512 machine; the table's first line names the
NTT kernels that binary ran.

With --out, the table goes to FILE.md with the machine (CPU model, SIMD
flags, threads, load average before and after) in its first line, and both
sides' raw JSON to FILE.raw.json beside it.
"""
import json
import os
import subprocess
import sys


def sh(cmd):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()


def load():
    return open("/proc/loadavg").read().split()[:3]


args = sys.argv[1:]
quick = ["--quick"] if "--quick" in args else []
out = args[args.index("--out") + 1] if "--out" in args else None
cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-")
simd = sh("grep -o -w 'avx2\\|avx512f\\|avx512ifma' /proc/cpuinfo | sort -u | tr '\\n' ' '")
load_before = load()
DEFAULT_BIN = "./target/release/slaf-he"
binary = os.environ.get("SLAF_HE_BIN", DEFAULT_BIN)
ours_json = subprocess.run([binary, "bench", "ckks", "--json", "--threads", "1"] + quick,
                           check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
theirs_json = subprocess.run([sys.executable, "benches/tenseal_ckks.py"] + quick,
                             check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
load_after = load()
kernels = json.loads(ours_json).get("machine", {}).get("ntt_kernels") or "unknown"
o = {(r["op"], r["n"]): r["median_us"] for r in json.loads(ours_json)["ops"]}
t = {(r["op"], r["n"]): r["median_us"] for r in json.loads(theirs_json)["ops"]}
NOTES = {
    "rotate": " (TenSEAL: sum()/log2 slots)",
    "mul_plain": " (TenSEAL encodes the plaintext too)",
    "keygen_galois": " (TenSEAL: all rotation keys; ours: one)",
    "decrypt": " (+decode)",
    "keygen_secret_public": " (TenSEAL: whole ts.context(), set-up included)",
}
lines = [
    f"CPU: {cpu}; SIMD: {simd}; slaf-he NTT kernels: {kernels}; 1 thread each (slaf-he --threads 1, TenSEAL n_threads=1); "
    f"load average {' '.join(load_before)} before, {' '.join(load_after)} after; "
    f"median per op{' (--quick)' if quick else ''}; "
    f"`{'' if binary == DEFAULT_BIN else 'SLAF_HE_BIN=' + binary + ' '}bash benches/compare_tenseal.sh"
    f"{' --quick' if quick else ''} --out {out or 'FILE.md'}`.",
    "",
    "| op | N | slaf-he ms | TenSEAL 0.3.18 ms | slaf-he / TenSEAL |",
    "|---|---|---|---|---|",
]
for key in sorted(o, key=lambda k: (k[1], k[0])):
    if key in t:
        lines.append(f"| {key[0]}{NOTES.get(key[0], '')} | {key[1]} | {o[key]/1e3:.2f} | "
                     f"{t[key]/1e3:.2f} | {o[key]/t[key]:.2f} |")
text = "\n".join(lines) + "\n"
print(text, end="")
if out:
    open(out, "w").write(text)
    raw = out[:-3] + ".raw.json" if out.endswith(".md") else out + ".raw.json"
    with open(raw, "w") as f:
        json.dump({"cpu": cpu, "simd": simd.split(), "threads": 1, "load_before": load_before,
                   "load_after": load_after, "slaf_he": json.loads(ours_json),
                   "tenseal": json.loads(theirs_json)}, f, indent=1)
