#!/usr/bin/env bash
# Run benches/torch_epoch.py with a Python that has torch and numpy:
# the current python3 or the system one (Debian: `apt-get install
# python3-torch python3-numpy`, a CPU build) if either imports torch, else
# a venv created here on first use with `pip install torch numpy` from PyPI
# (a large download). Arguments go to the script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=""
for cand in python3 /usr/bin/python3; do
  if command -v "$cand" >/dev/null && "$cand" -c 'import torch, numpy' 2>/dev/null; then
    py=$cand
    break
  fi
done
if [ -z "$py" ]; then
  venv=$here/.venv-torch
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet torch numpy
  fi
  py=$venv/bin/python
fi
exec "$py" "$here/torch_epoch.py" "$@"
