#!/usr/bin/env bash
# `--params auto` against `--params auto-hybrid` (same ring and ciphertext
# primes; 31-bit special primes and fewer key-switching digits), one binary,
# in one run, alternated ROUNDS times so that machine drift hits both alike.
# For each model: batched on BATCHED images and per-image on PER_IMAGE
# images, seeded keys. Prints a markdown table of the median wall time over
# rounds, the ratio hybrid/auto, both parameter sets, accuracies and max
# logit errors, headed by the CPU model, SIMD flags, thread count and load.
#
#   bash benches/auto_hybrid.sh [ROUNDS] [BATCHED] [PER_IMAGE] [OUT.md]
#
# Defaults: 3 rounds, 4096 images batched (one batch), 10 per image.
# e.g. bash benches/auto_hybrid.sh 3 4096 10 results/ckks/auto_hybrid_avx2_only.md
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SLAF_HE_BIN:-target/release/slaf-he}
[ -n "${SLAF_HE_BIN:-}" ] || cargo build --release -q
rounds=${1:-3}
batched=${2:-4096}
per_image=${3:-10}
out=${4:-}
models="cnn1-slaf cnn2-slaf cnn1-slaf-p"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq 1 "$rounds"); do
  order="auto auto-hybrid"; [ $((r % 2)) = 0 ] && order="auto-hybrid auto"
  for m in $models; do
    for mode in batched per-image; do
      n=$batched; [ "$mode" = per-image ] && n=$per_image
      for p in $order; do
        timeout 1800 "$bin" infer --weights "results/training/$m.json.gz" --mode "$mode" \
          --params "$p" --images "$n" --seed 5 --json --quiet | tail -n 1 > "$tmp/$p-$m-$mode-$r.json"
      done
    done
  done
  echo "round $r/$rounds done" >&2
done
python3 - "$tmp" "$rounds" "$out" "$models" "$bin" <<'PY'
import json, statistics, sys
sys.path.insert(0, "benches")
from machine_facts import machine_line
tmp, rounds, out, models, binary = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split(), sys.argv[5]
def get(p, m, mode):
    runs = [json.load(open(f"{tmp}/{p}-{m}-{mode}-{r}.json")) for r in range(1, rounds + 1)]
    return statistics.median(x["wall_seconds"] for x in runs), runs[-1]
lines = [f"{machine_line()}; `{binary}`; "
         f"median wall time (encryption + evaluation + decryption) over {rounds} alternating rounds.", "",
         "| model | mode | images | auto (s) | auto-hybrid (s) | hybrid / auto | auto parameters | auto-hybrid parameters | accuracy auto / hybrid | max logit error auto / hybrid |",
         "|---|---|---:|---:|---:|---:|---|---|---:|---:|"]
ratios = []
for m in models:
    for mode in ["batched", "per-image"]:
        (ta, a), (th, h) = get("auto", m, mode), get("auto-hybrid", m, mode)
        ratios.append(th / ta)
        lines.append(f"| {m} | {mode} | {h['images']} | {ta:.2f} | {th:.2f} | {th / ta:.3f} | "
                     f"{a['params']['description']} | {h['params']['description']} | "
                     f"{100 * a['he_accuracy']:.2f} / {100 * h['he_accuracy']:.2f} % | "
                     f"{a['max_logit_error']:.2e} / {h['max_logit_error']:.2e} |")
g = 1.0
for x in ratios:
    g *= x
lines += ["", f"Geometric mean of the ratios: {g ** (1 / len(ratios)):.3f}"]
text = "\n".join(lines) + "\n"
print(text, end="")
if out:
    open(out, "w").write(text)
PY
