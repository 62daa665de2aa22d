#!/usr/bin/env bash
# The server's memory under concurrent large requests (issue #40): `slaf-he
# serve` (batched CNN1-X2, default limits) and 1, 4 and 8 clients that each
# send one full batched request (784 ciphertexts, 343 MiB seeded) at once.
# Reports, per run, the server's peak RSS, the requests shed and retried,
# and whether every client's answers agreed with the plaintext model.
# Before the admission work the same loads peaked at 1.1 / 3.6 / 6.8 GiB.
#   bash benches/serve_memory.sh [OUT.md]   (default results/service/memory.md)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SLAF_HE:-target/release/slaf-he}
w=results/training/cnn1-x2.json.gz
out=${1:-results/service/memory.md}
[ -x "$bin" ] || { echo "serve_memory.sh: build first (cargo build --release)" >&2; exit 2; }
tmp=$(mktemp -d)
cleanup() { [ -n "${spid:-}" ] && kill "$spid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
rows=()
for clients in 1 4 8; do
  port=$((20000 + RANDOM % 20000)); url="http://127.0.0.1:$port"
  RUST_LOG=warn "$bin" serve --model "$w" --addr "127.0.0.1:$port" --metrics-addr "127.0.0.1:$((port + 1))" > "$tmp/serve.log" 2>&1 &
  spid=$!
  for _ in $(seq 1 100); do curl -sf "$url/healthz" > /dev/null 2>&1 && break; sleep 0.2; done
  for c in $(seq 1 "$clients"); do
    timeout 600 "$bin" keygen --server "$url" --out "$tmp/keys$clients-$c" > /dev/null
  done
  start=$(date +%s.%N); pids=()
  for c in $(seq 1 "$clients"); do
    timeout 1800 "$bin" query --server "$url" --keys "$tmp/keys$clients-$c" --images 256 \
      --offset $(((c - 1) * 256)) --reference "$w" --json --quiet > "$tmp/q$clients-$c.json" &
    pids+=($!)
  done
  ok=0; for p in "${pids[@]}"; do wait "$p" && ok=$((ok + 1)); done
  end=$(date +%s.%N)
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$spid/status")
  shed=$(curl -sf "http://127.0.0.1:$((port + 1))/metrics" | awk '/^slaf_shed_total/ {s += $2} END {print s + 0}')
  rows+=("$(python3 - "$tmp" "$clients" "$start" "$end" "$rss" "$ok" "$shed" <<'PY'
import json, sys
tmp, clients, start, end, rss, ok, shed = sys.argv[1:8]
clients = int(clients)
runs = []
for c in range(1, clients + 1):
    try:
        runs.append(json.loads(open(f"{tmp}/q{clients}-{c}.json").read().strip().splitlines()[-1]))
    except Exception:
        pass
agree = min((r["agreement"] for r in runs), default=0.0)
retries = sum(r.get("retries", 0) for r in runs)
print(f"| {clients} | {int(ok)}/{clients} | {float(end) - float(start):.1f} | {int(rss) / 2**20:.2f} | {shed} | {retries} | {100 * agree:.2f} % |")
PY
)")
  kill "$spid"; wait "$spid" 2>/dev/null || true; spid=
done
python3 - "$out" "${rows[@]}" <<'PY'
import sys
sys.path.insert(0, "benches")
from machine_facts import machine_line
out, rows = sys.argv[1], sys.argv[2:]
text = "\n".join([
    "# Server memory under concurrent full batched requests", "",
    f"{machine_line()}.", "",
    "`slaf-he serve` with its defaults (batched CNN1-X2; --workers 2 --queue 2 --body-mib 1536 --memory-mib 2048); "
    "each client sends one full request (784 ciphertexts, 343 MiB) at once and retries a shed one.", "",
    "| clients | served | wall (s) | server peak RSS (GiB) | requests shed | client retries | lowest agreement |",
    "|---:|---:|---:|---:|---:|---:|---:|",
    *rows, "",
    "Before the admission work (issue #40) the same loads peaked at 1.1 / 3.6 / 6.8 GiB.",
    "`bash benches/serve_memory.sh` regenerates this file.", ""])
open(out, "w").write(text)
print(text, end="")
PY
