#!/usr/bin/env bash
# Sets up everything the notebooks need, in a Python venv (no conda needed):
#   - a venv at notebooks/.venv with jupyterlab + nbclient (or reuse $VIRTUAL_ENV / a conda env),
#   - the evcxr Jupyter kernel 0.22.0 (prebuilt copy from ../shared/tools when present,
#     else `cargo install evcxr_jupyter --version 0.22.0 --locked`, 15-20 min),
#   - the kernelspec "rust" (evcxr_jupyter --install: the user kernelspec folder), with cargo
#     profile settings in its env (no overflow checks / debug assertions / debug info).
#   - the kernel starts through notebooks/kernel.sh, which reuses the warm build folder target/evcxr;
#   - with --prebuild, compiles slaf-he and its dependencies into that folder now (8-13 min cold,
#     seconds when warm), so that the first `:dep` cell of a fresh JupyterLab kernel is warm.
# Usage: bash notebooks/setup.sh [--prebuild]        then: notebooks/.venv/bin/jupyter lab notebooks/
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="${SLAF_HE_VENV:-$here/.venv}"
if [ -n "${CONDA_PREFIX:-}" ] && python3 -c "import nbclient, jupyterlab" 2>/dev/null; then
  venv="$CONDA_PREFIX"
else
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q "jupyterlab>=4" "nbclient>=0.10" "nbformat>=5" "ipykernel"
fi
# The Rust kernel.
shared_tool="$here/../../shared/tools/install-evcxr.sh"
if ! command -v evcxr_jupyter >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/evcxr_jupyter" ]; then
  if [ -f "$shared_tool" ]; then
    bash "$shared_tool" >/dev/null
  else
    cargo install evcxr_jupyter --version 0.22.0 --locked
  fi
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# Register the kernelspec "rust".
JUPYTER_DATA_DIR="$venv/share/jupyter" evcxr_jupyter --install >/dev/null
# The kernel's cargo builds: no overflow checks, debug assertions or debug info
# in evcxr's dev profile (the CKKS code runs several times faster).
JUPYTER_PATH="$venv/share/jupyter" "$venv/bin/jupyter" kernelspec list --json | SLAF_HE_KERNEL_SH="$here/kernel.sh" "$venv/bin/python" -c "$(cat <<'PY'
import json, os, sys
path = os.path.join(json.load(sys.stdin)["kernelspecs"]["rust"]["resource_dir"], "kernel.json")
spec = json.load(open(path))
# Start through notebooks/kernel.sh: the shared warm build folder, locked.
spec["argv"] = ["bash", os.environ["SLAF_HE_KERNEL_SH"], "{connection_file}"]
spec.setdefault("env", {}).update({
    "CARGO_PROFILE_DEV_DEBUG_ASSERTIONS": "false",
    "CARGO_PROFILE_DEV_OVERFLOW_CHECKS": "false",
    "CARGO_PROFILE_DEV_DEBUG": "0",
})
json.dump(spec, open(path, "w"), indent=1)
PY
)"
echo "venv: $venv"
echo "kernel: $(command -v evcxr_jupyter) ($(JUPYTER_PATH="$venv/share/jupyter" "$venv/bin/jupyter" kernelspec list 2>/dev/null | grep -c rust) rust kernelspec)"
if [ "${1:-}" = --prebuild ]; then
  # A notebook of the set-up cells alone, run by the same kernel and runner as run.sh.
  pre="$here/.prebuild.ipynb"
  "$venv/bin/python" - "$pre" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1].rsplit("/", 1)[0])
import make_notebooks as m
cells = [c for c in m.SETUP if c[0] == "code"]
json.dump(m.notebook(cells), open(sys.argv[1], "w"), indent=1)
PY
  start=$(date +%s)
  EVCXR_TMPDIR="${EVCXR_TMPDIR:-$here/../target/evcxr}" SLAF_HE_PROFILE=quick \
    JUPYTER_PATH="$venv/share/jupyter" "$venv/bin/python" "$here/run_notebooks.py" "$pre"
  rm -f "$pre"
  echo "prebuild: $(( $(date +%s) - start )) s"
fi
