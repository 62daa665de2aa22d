#!/usr/bin/env bash
# `--params auto` (A) against `--params auto-hybrid` (B: same ring and
# ciphertext primes; 31-bit special primes and fewer key-switching digits),
# one binary, in one run, through benches/infer_ab.sh (alternated rounds,
# median wall time, both parameter sets, accuracies, logit errors, machine
# facts) on CNN1-SLAF, CNN2-SLAF and CNN1-SLAF-P.
#
#   bash benches/auto_hybrid.sh [ROUNDS] [BATCHED] [PER_IMAGE] [OUT.md]
#
# Defaults: 3 rounds, 4096 images batched (one batch), 10 per image.
# e.g. bash benches/auto_hybrid.sh 3 4096 10 results/ckks/auto_hybrid_avx2_only.md
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SLAF_HE_BIN:-target/release/slaf-he}
[ -n "${SLAF_HE_BIN:-}" ] || cargo build --release -q
A_LABEL=auto A_BIN=$bin A_ARGS="--params auto" \
  B_LABEL=auto-hybrid B_BIN=$bin B_ARGS="--params auto-hybrid" \
  MODELS="cnn1-slaf cnn2-slaf cnn1-slaf-p" \
  ROUNDS=${1:-3} BATCHED=${2:-4096} PER_IMAGE=${3:-10} OUT=${4:-} \
  bash benches/infer_ab.sh
