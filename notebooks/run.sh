#!/usr/bin/env bash
# Executes every notebook in notebooks/ headless (nbclient + the evcxr "rust" kernel).
# Profile: SLAF_HE_PROFILE=quick|full (default quick here; a person in Jupyter gets full).
# EVCXR_TMPDIR persists compiled dependencies between runs (target/evcxr), so reruns are warm.
# Usage: bash notebooks/run.sh [--write] [NOTEBOOK.ipynb ...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/setup.sh" >/dev/null
venv="${SLAF_HE_VENV:-$here/.venv}"
[ -n "${CONDA_PREFIX:-}" ] && [ ! -x "$venv/bin/python" ] && venv="$CONDA_PREFIX"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export JUPYTER_PATH="$venv/share/jupyter"
export EVCXR_TMPDIR="${EVCXR_TMPDIR:-$here/../target/evcxr}"
export SLAF_HE_PROFILE="${SLAF_HE_PROFILE:-quick}"
# evcxr builds with cargo's dev profile at :opt 2, which keeps overflow checks
# and debug assertions (several times slower CKKS); switch them off, and skip
# debug info (faster compile and link). notebooks/setup.sh writes the same
# settings into the kernelspec for interactive use.
export CARGO_PROFILE_DEV_DEBUG_ASSERTIONS=false CARGO_PROFILE_DEV_OVERFLOW_CHECKS=false
export CARGO_PROFILE_DEV_DEBUG=0
# (Not CARGO_INCREMENTAL=0: with it, evcxr's :cache serves stale code and cells fail with "dlsym failed".)
mkdir -p "$EVCXR_TMPDIR"
write=()
args=()
for a in "$@"; do
  if [ "$a" = --write ]; then
    write=(--write)
  elif [ -f "$a" ]; then
    args+=("$(cd "$(dirname "$a")" && pwd)/$(basename "$a")")
  else
    echo "no such notebook: $a" >&2; exit 2
  fi
done
if [ ${#args[@]} -eq 0 ]; then
  mapfile -t args < <(ls "$here"/*.ipynb 2>/dev/null)
fi
if [ ${#args[@]} -eq 0 ]; then
  echo "no notebooks to run"; exit 0
fi
cd "$here"
"$venv/bin/python" "$here/run_notebooks.py" "${write[@]}" "${args[@]}"
