#!/usr/bin/env bash
# Per-image encrypted inference, slaf-he vs TenSEAL 0.3.18, for the four
# encrypted models, one thread each, in one run on this machine. Raw logs
# (with the CPU model, SIMD flags, thread count and load average) go to
# results/inference/tenseal/<model>.log, the table to
# results/inference/tenseal/summary.md.
#   bash benches/tenseal_infer_all.sh [IMAGES_CNN1] [IMAGES_CNN2]
set -euo pipefail
cd "$(dirname "$0")/.."
n1=${1:-3}
n2=${2:-1}
out=results/inference/tenseal
mkdir -p "$out"
machine() {
  echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "SIMD: $(grep -o -w 'avx2\|avx512f\|avx512ifma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "threads: 1 (RAYON_NUM_THREADS=1, TenSEAL n_threads=1); nproc $(nproc)"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
}
rows=()
for spec in cnn1-x2:$n1 cnn1-slaf:$n1 cnn2-slaf:$n2 cryptonets-x2:$n2; do
  model=${spec%%:*}; n=${spec##*:}
  log="$out/$model.log"
  { machine; echo "command: bash benches/tenseal_infer.sh results/training/$model.json.gz $n"; echo;
    RAYON_NUM_THREADS=1 bash benches/tenseal_infer.sh "results/training/$model.json.gz" "$n";
    echo; echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"; } 2>&1 | tee "$log"
  rows+=("$(grep '^{' "$log" | tail -n 1)")
done
python3 - "$out/summary.md" "${rows[@]}" <<'PY'
import json, subprocess, sys
out, rows = sys.argv[1], [json.loads(r) for r in sys.argv[2:] if r.strip()]
cpu = subprocess.run("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-", shell=True,
                     capture_output=True, text=True).stdout.strip()
simd = subprocess.run("grep -o -w 'avx2\\|avx512f\\|avx512ifma' /proc/cpuinfo | sort -u | tr '\\n' ' '",
                      shell=True, capture_output=True, text=True).stdout.strip()
lines = [f"Per-image encrypted inference, one thread each, one run (`bash benches/tenseal_infer_all.sh`). "
         f"CPU: {cpu}; SIMD: {simd}; load averages in the raw logs beside this file.", "",
         "| model | images | slaf-he s/image | TenSEAL s/image | TenSEAL / slaf-he |", "|---|---|---|---|---|"]
for r in rows:
    lines.append(f"| {r['model']} | {r['images']} | {r['slaf_he_s']:.3f} | {r['tenseal_s']:.2f} | {r['tenseal_s'] / r['slaf_he_s']:.1f}x |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
