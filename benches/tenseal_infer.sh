#!/usr/bin/env bash
# Per-image encrypted inference, slaf-he vs TenSEAL 0.3.18, same weights and
# images, single thread, ratio printed in one run.
#   bash benches/tenseal_infer.sh results/training/cnn1-x2.json.gz 3
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -q --example per_image_latency
export SLAF_HE_LATENCY_EXE="$target/release/examples/per_image_latency"
venv="$target/venv-tenseal"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q "tenseal==0.3.18" numpy
"$venv/bin/python" benches/tenseal_infer.py "$@"
