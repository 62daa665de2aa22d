#!/usr/bin/env bash
# One run, both libraries: slaf-he vs TenSEAL CKKS primitives, single thread.
#   bash benches/compare_tenseal.sh [--quick] [--out results/ckks/compare_tenseal.md]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
venv=target/venv-tenseal
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q "tenseal==0.3.18"
"$venv/bin/python" benches/compare_tenseal.py "$@"
