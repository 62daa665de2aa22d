#!/usr/bin/env bash
# Encrypted inference by two sides, A and B, side by side in one run,
# alternated ROUNDS times so that machine drift hits both alike. A side is
# a binary plus extra `infer` arguments (two commits' binaries, or one
# binary under two `--params`). For each model: batched on BATCHED images
# and per-image on PER_IMAGE images, seeded keys. Prints a markdown table
# of the median wall time over rounds, the ratio B/A, both parameter sets,
# accuracies, agreements and max logit errors, headed by the CPU model,
# SIMD flags, thread count and load average. Used by infer_vs_previous.sh
# and auto_hybrid.sh; set by environment:
#
#   A_LABEL A_BIN A_ARGS B_LABEL B_BIN B_ARGS MODELS ROUNDS BATCHED PER_IMAGE OUT
set -euo pipefail
cd "$(dirname "$0")/.."
: "${A_LABEL:?} ${A_BIN:?} ${B_LABEL:?} ${B_BIN:?} ${MODELS:?}"
rounds=${ROUNDS:-3}
batched=${BATCHED:-4096}
per_image=${PER_IMAGE:-10}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq 1 "$rounds"); do
  order="a b"; [ $((r % 2)) = 0 ] && order="b a"
  for m in $MODELS; do
    for mode in batched per-image; do
      n=$batched; [ "$mode" = per-image ] && n=$per_image
      for side in $order; do
        bin=$A_BIN; args=${A_ARGS:-}
        [ "$side" = b ] && { bin=$B_BIN; args=${B_ARGS:-}; }
        # shellcheck disable=SC2086 # args are word lists by design
        timeout 1800 "$bin" infer --weights "results/training/$m.json.gz" --mode "$mode" \
          $args --images "$n" --seed 5 --json --quiet | tail -n 1 > "$tmp/$side-$m-$mode-$r.json"
      done
    done
  done
  echo "round $r/$rounds done" >&2
done
python3 - "$tmp" "$rounds" "${OUT:-}" "$MODELS" "$A_LABEL" "$B_LABEL" <<'PY'
import json, statistics, sys
sys.path.insert(0, "benches")
from machine_facts import machine_line
tmp, rounds, out, models, la, lb = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split(), sys.argv[5], sys.argv[6]
def get(side, m, mode):
    runs = [json.load(open(f"{tmp}/{side}-{m}-{mode}-{r}.json")) for r in range(1, rounds + 1)]
    return statistics.median(x["wall_seconds"] for x in runs), runs[-1]
lines = [f"{machine_line()}; A = {la}, B = {lb}; "
         f"median wall time (encryption + evaluation + decryption) over {rounds} alternating rounds.", "",
         f"| model | mode | images | {la} (s) | {lb} (s) | B / A | parameters A | parameters B "
         "| accuracy A / B | agreement A / B | max logit error A / B |",
         "|---|---|---:|---:|---:|---:|---|---|---:|---:|---:|"]
ratios = []
for m in models:
    for mode in ["batched", "per-image"]:
        (ta, a), (tb, b) = get("a", m, mode), get("b", m, mode)
        ratios.append(tb / ta)
        lines.append(f"| {m} | {mode} | {b['images']} | {ta:.2f} | {tb:.2f} | {tb / ta:.3f} | "
                     f"{a['params']['description']} | {b['params']['description']} | "
                     f"{100 * a['he_accuracy']:.2f} / {100 * b['he_accuracy']:.2f} % | "
                     f"{100 * a['agreement']:.2f} / {100 * b['agreement']:.2f} % | "
                     f"{a['max_logit_error']:.2e} / {b['max_logit_error']:.2e} |")
g = 1.0
for x in ratios:
    g *= x
lines += ["", f"Geometric mean of the ratios B / A: {g ** (1 / len(ratios)):.3f}"]
text = "\n".join(lines) + "\n"
print(text, end="")
if out:
    open(out, "w").write(text)
PY
