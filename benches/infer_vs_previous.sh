#!/usr/bin/env bash
# Encrypted inference of the four P1 presets by two binaries side by side,
# in one run: the previous commit's (BASE, side A) and this one's (NEW,
# side B), through benches/infer_ab.sh (alternated rounds, median wall
# time, seeded keys so that both binaries see the same images, accuracies,
# agreements, machine facts).
#
#   bash benches/infer_vs_previous.sh BASE NEW [ROUNDS] [BATCHED] [PER_IMAGE] [OUT.md]
#
# Defaults: 3 rounds, 4096 images batched (one batch), 10 per image.
# Build BASE from the previous commit, e.g.
#   git worktree add /tmp/base HEAD~1 && (cd /tmp/base && cargo build --release)
set -euo pipefail
usage="usage: infer_vs_previous.sh BASE NEW [ROUNDS] [BATCHED] [PER_IMAGE] [OUT.md]"
base=$(realpath "${1:?$usage}")
new=$(realpath "${2:?$usage}")
A_LABEL=previous A_BIN=$base B_LABEL=this B_BIN=$new \
  MODELS="cnn1-x2 cnn1-slaf cnn2-slaf cryptonets-x2" \
  ROUNDS=${3:-3} BATCHED=${4:-4096} PER_IMAGE=${5:-10} OUT=${6:-} \
  bash "$(dirname "$0")/infer_ab.sh"
