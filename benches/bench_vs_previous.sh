#!/usr/bin/env bash
# `slaf-he bench ckks` of two binaries side by side, in one run: the
# previous commit's (BASE) and this one's (NEW), alternated ROUNDS times so
# that machine drift hits both alike. Prints a markdown table of the median
# over rounds of each op's median time, the ratio NEW/BASE and both
# precisions, headed by the CPU model, SIMD flags, thread count and load.
#
#   bash benches/bench_vs_previous.sh BASE NEW [ROUNDS] [OUT.md]
#
# Build BASE from the previous commit, e.g.
#   git worktree add /tmp/base HEAD~1 && (cd /tmp/base && cargo build --release)
set -euo pipefail
base=${1:?usage: bench_vs_previous.sh BASE NEW [ROUNDS] [OUT.md]}
new=${2:?usage: bench_vs_previous.sh BASE NEW [ROUNDS] [OUT.md]}
rounds=${3:-5}
out=${4:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq 1 "$rounds"); do
  # Alternate which binary goes first, so that neither always runs warm.
  order="base new"; [ $((r % 2)) = 0 ] && order="new base"
  for side in $order; do
    bin=$base; [ "$side" = new ] && bin=$new
    "$bin" bench ckks --quiet --json --threads 1 | tail -n 1 > "$tmp/$side-$r.json"
  done
  echo "round $r/$rounds done" >&2
done
python3 - "$tmp" "$rounds" "$out" <<'PY'
import json, os, statistics, subprocess, sys
tmp, rounds, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def load(side):
    t, p = {}, {}
    for r in range(1, rounds + 1):
        for o in json.load(open(f"{tmp}/{side}-{r}.json"))["ops"]:
            k = (o["n"], o["op"])
            t.setdefault(k, []).append(o["median_us"])
            if o.get("precision_bits") is not None:
                p.setdefault(k, []).append(o["precision_bits"])
    return t, p
(bt, bp), (nt, np_) = load("base"), load("new")
kernels = {side: json.load(open(f"{tmp}/{side}-1.json"))["machine"].get("ntt_kernels", "?")
           for side in ("base", "new")}
cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip(); break
flags = subprocess.run("grep -o -w 'avx2\\|avx512f\\|avx512ifma' /proc/cpuinfo | sort -u | tr '\\n' ' '",
                       shell=True, capture_output=True, text=True).stdout.strip() or "none"
load = open("/proc/loadavg").read().split()[:3]
lines = [f"CPU: {cpu}; SIMD: {flags}; NTT kernels: previous {kernels['base']}, this {kernels['new']}; "
         f"1 thread; load average {' '.join(load)}; "
         f"median over {rounds} alternating rounds of each binary's per-op median.", "",
         "| op | N | previous (µs) | this (µs) | this / previous | precision bits previous / this |",
         "|---|---|---|---|---|---|"]
ratios = []
for k in sorted(bt, key=lambda k: (k[0], list(bt).index(k))):
    if k not in nt: continue
    b, n = statistics.median(bt[k]), statistics.median(nt[k])
    ratios.append(n / b)
    pb = f"{statistics.median(bp[k]):.2f}" if k in bp else "—"
    pn = f"{statistics.median(np_[k]):.2f}" if k in np_ else "—"
    lines.append(f"| {k[1]} | {k[0]} | {b:.1f} | {n:.1f} | {n/b:.3f} | {pb} / {pn} |")
lines += ["", f"Geometric mean of the ratios: {statistics.geometric_mean(ratios):.3f}"]
text = "\n".join(lines) + "\n"
print(text)
if out:
    open(out, "w").write(text)
PY
