#!/usr/bin/env bash
# Run benches/torch_epoch.py in its own venv (created on first use with
# `pip install torch numpy`, CPU wheels). Arguments go to the script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=$here/.venv-torch
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --index-url https://download.pytorch.org/whl/cpu torch
  "$venv/bin/pip" install --quiet numpy
fi
exec "$venv/bin/python" "$here/torch_epoch.py" "$@"
