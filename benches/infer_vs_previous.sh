#!/usr/bin/env bash
# Encrypted inference of the four P1 presets by two binaries side by side,
# in one run: the previous commit's (BASE) and this one's (NEW), alternated
# ROUNDS times so that machine drift hits both alike. For each model:
# batched on BATCHED images and per-image on PER_IMAGE images, seeded keys
# (so both binaries see the same images and, where the key generation is
# the same, the same keys). Prints a markdown table of the median wall time
# over rounds, the ratio NEW/BASE and both accuracies/agreements, headed by
# the CPU model, SIMD flags, thread count and load average.
#
#   bash benches/infer_vs_previous.sh BASE NEW [ROUNDS] [BATCHED] [PER_IMAGE] [OUT.md]
#
# Defaults: 3 rounds, 4096 images batched (one batch), 10 per image.
# Build BASE from the previous commit, e.g.
#   git worktree add /tmp/base HEAD~1 && (cd /tmp/base && cargo build --release)
set -euo pipefail
base=${1:?usage: infer_vs_previous.sh BASE NEW [ROUNDS] [BATCHED] [PER_IMAGE] [OUT.md]}
new=${2:?usage: infer_vs_previous.sh BASE NEW [ROUNDS] [BATCHED] [PER_IMAGE] [OUT.md]}
rounds=${3:-3}
batched=${4:-4096}
per_image=${5:-10}
out=${6:-}
models="cnn1-x2 cnn1-slaf cnn2-slaf cryptonets-x2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq 1 "$rounds"); do
  order="base new"; [ $((r % 2)) = 0 ] && order="new base"
  for m in $models; do
    for mode in batched per-image; do
      n=$batched; [ "$mode" = per-image ] && n=$per_image
      for side in $order; do
        bin=$base; [ "$side" = new ] && bin=$new
        timeout 1800 "$bin" infer --weights "results/training/$m.json.gz" --mode "$mode" \
          --images "$n" --seed 5 --json --quiet | tail -n 1 > "$tmp/$side-$m-$mode-$r.json"
      done
    done
  done
  echo "round $r/$rounds done" >&2
done
python3 - "$tmp" "$rounds" "$out" "$models" <<'PY'
import json, statistics, sys
sys.path.insert(0, "benches")
from machine_facts import machine_line
tmp, rounds, out, models = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split()
def get(side, m, mode):
    runs = [json.load(open(f"{tmp}/{side}-{m}-{mode}-{r}.json")) for r in range(1, rounds + 1)]
    return statistics.median(x["wall_seconds"] for x in runs), runs[-1]
lines = [f"{machine_line()}; "
         f"median wall time (encryption + evaluation + decryption) over {rounds} alternating rounds.", "",
         "| model | mode | images | previous (s) | this (s) | this / previous | accuracy previous / this | agreement previous / this |",
         "|---|---|---:|---:|---:|---:|---:|---:|"]
ratios = []
for m in models:
    for mode in ["batched", "per-image"]:
        (tb, b), (tn, n) = get("base", m, mode), get("new", m, mode)
        ratios.append(tn / tb)
        lines.append(f"| {m} | {mode} | {n['images']} | {tb:.2f} | {tn:.2f} | {tn / tb:.3f} | "
                     f"{100 * b['he_accuracy']:.2f} / {100 * n['he_accuracy']:.2f} % | "
                     f"{100 * b['agreement']:.2f} / {100 * n['agreement']:.2f} % |")
g = 1.0
for x in ratios:
    g *= x
lines += ["", f"Geometric mean of the ratios: {g ** (1 / len(ratios)):.3f}"]
text = "\n".join(lines) + "\n"
print(text, end="")
if out:
    open(out, "w").write(text)
PY
