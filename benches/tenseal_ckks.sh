#!/usr/bin/env bash
# Runs benches/tenseal_ckks.py in its own venv (target/venv-tenseal, tenseal 0.3.18).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/venv-tenseal
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q "tenseal==0.3.18"
"$venv/bin/python" benches/tenseal_ckks.py "$@"
