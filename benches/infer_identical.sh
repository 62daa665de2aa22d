#!/usr/bin/env bash
# Bit-identity of encrypted inference between two binaries (a refactoring's
# check): the four P1 presets, both engines, IMAGES test images from
# OFFSET, seeded keys; each side writes images.csv (label, plaintext and
# encrypted prediction, max logit error per image, the error printed with
# 17 significant digits by serde) and the two files must be equal byte for
# byte. Prints one line per run and exits 1 on the first difference.
#
#   bash benches/infer_identical.sh BASE NEW [IMAGES] [OFFSET]
#
# Defaults: 300 images from offset 0 (batched: one batch of 300 slots).
set -euo pipefail
usage="usage: infer_identical.sh BASE NEW [IMAGES] [OFFSET]"
base=$(realpath "${1:?$usage}")
new=$(realpath "${2:?$usage}")
images=${3:-300}
offset=${4:-0}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for m in cnn1-x2 cnn1-slaf cnn2-slaf cryptonets-x2; do
  for mode in batched per-image; do
    for side in base new; do
      bin=$base; [ "$side" = new ] && bin=$new
      timeout 1800 "$bin" infer --weights "results/training/$m.json.gz" --mode "$mode" \
        --images "$images" --offset "$offset" --seed 5 --quiet --json \
        --out "$tmp/$side-$m-$mode" > "$tmp/$side-$m-$mode.json"
    done
    if cmp -s "$tmp/base-$m-$mode/images.csv" "$tmp/new-$m-$mode/images.csv"; then
      rows=$(($(wc -l < "$tmp/new-$m-$mode/images.csv") - 1))
      echo "$m $mode: images.csv identical ($rows rows)"
    else
      echo "$m $mode: images.csv DIFFERS"
      diff "$tmp/base-$m-$mode/images.csv" "$tmp/new-$m-$mode/images.csv" | head -5
      status=1
    fi
  done
done
exit $status
