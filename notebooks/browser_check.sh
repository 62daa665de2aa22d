#!/usr/bin/env bash
# The notebooks as a new user meets them: JupyterLab on 127.0.0.1 driven by
# headless Chromium (Debian chromium + chromium-driver, Python selenium).
#   pass 1: open each committed notebook and check that its figures render;
#   pass 2 (--run): Run All Cells in JupyterLab, wait, time the `:dep` cell,
#           fail on any error output or panic.
# Screenshots and timings.json go to results/notebooks/screens/. Autosave is
# off and the notebooks are restored afterwards, so committed outputs stay.
# Usage: bash notebooks/browser_check.sh [--run] [NOTEBOOK.ipynb ...]
#   BROWSER_CHECK_TIMINGS=NAME.json names the timings file (default timings.json).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium chromium-driver
fi
bash "$here/setup.sh" >/dev/null
venv="${SLAF_HE_VENV:-$here/.venv}"
[ -n "${CONDA_PREFIX:-}" ] && [ ! -x "$venv/bin/python" ] && venv="$CONDA_PREFIX"
"$venv/bin/python" -c "import selenium" 2>/dev/null || "$venv/bin/python" -m pip install -q "selenium>=4.20"
run=(); nbs=()
for a in "$@"; do
  if [ "$a" = --run ]; then run=(--run); else nbs+=("$(cd "$(dirname "$a")" && pwd)/$(basename "$a")"); fi
done
[ ${#nbs[@]} -eq 0 ] && mapfile -t nbs < <(ls "$here"/*.ipynb)
# User settings for this server only: no autosave, every cell rendered.
settings=$(mktemp -d)
mkdir -p "$settings/user/@jupyterlab/docmanager-extension" "$settings/user/@jupyterlab/notebook-extension" "$settings/workspaces"
echo '{"autosave": false}' > "$settings/user/@jupyterlab/docmanager-extension/plugin.jupyterlab-settings"
echo '{"windowingMode": "none"}' > "$settings/user/@jupyterlab/notebook-extension/tracker.jupyterlab-settings"
export JUPYTERLAB_SETTINGS_DIR="$settings/user" JUPYTERLAB_WORKSPACES_DIR="$settings/workspaces"
backup=$(mktemp -d)
cp "${nbs[@]}" "$backup/"
port=$(( 20000 + RANDOM % 20000 ))
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export JUPYTER_PATH="$venv/share/jupyter"
export SLAF_HE_PROFILE="${SLAF_HE_PROFILE:-quick}"
cd "$here"
root=(); [ "$(id -u)" -eq 0 ] && root=(--allow-root)
mkdir -p "$repo/target"
"$venv/bin/jupyter" lab --no-browser --ip 127.0.0.1 --port "$port" "${root[@]}" \
  --ServerApp.token="$token" --ServerApp.root_dir="$here" --LabApp.expose_app_in_browser=True \
  > "$repo/target/browser_check_server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  for f in "$backup"/*.ipynb; do cp "$f" "$here/"; done
  rm -rf "$backup" "$settings"
}
trap cleanup EXIT
up=""
for _ in $(seq 90); do
  if ! kill -0 "$server" 2>/dev/null; then break; fi
  if "$venv/bin/python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=2)" \
      "http://127.0.0.1:$port/api/status?token=$token" 2>/dev/null; then up=1; break; fi
  sleep 1
done
if [ -z "$up" ]; then
  echo "JupyterLab did not start; its log (target/browser_check_server.log):" >&2
  tail -20 "$repo/target/browser_check_server.log" >&2
  exit 1
fi
"$venv/bin/python" "$here/browser_check.py" --url "http://127.0.0.1:$port" --token "$token" \
  --screens "$repo/results/notebooks/screens" --server-log "$repo/target/browser_check_server.log" \
  --timings "${BROWSER_CHECK_TIMINGS:-timings.json}" \
  "${run[@]}" "${nbs[@]}"
