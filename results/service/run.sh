#!/usr/bin/env bash
# The client/server split measured on loopback: CNN1-X2 served in both
# modes, keys made by `keygen` from the published plan, `query` with the
# local plaintext model as reference (agreement), then the load benchmark.
# Also with noise flooding (--flood-bits 16 in both modes: the most
# that keeps 4 bits of logit precision at each output scale).
# Writes into results/service/: plan-RUN.json, keygen-RUN.txt,
# query-RUN.json (one summary line each) and serve_load-MODE.md.
# Run from the repository root after `cargo build --release`:
#   bash results/service/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=target/release/slaf-he
out=results/service
w=results/training/cnn1-x2.json.gz
tmp=$(mktemp -d)
cleanup() { [ -n "${spid:-}" ] && kill "$spid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
for run in per-image batched per-image:16 batched:16; do
  mode=${run%%:*}; flood=${run#*:}; name=$mode
  extra=()
  if [ "$flood" != "$run" ]; then extra=(--flood-bits "$flood"); name=$mode-flood$flood; fi
  port=$((20000 + RANDOM % 20000))
  url="http://127.0.0.1:$port"
  "$bin" serve --model "$w" --mode "$mode" --addr "127.0.0.1:$port" "${extra[@]}" > "$tmp/serve-$name.log" 2>&1 &
  spid=$!
  for _ in $(seq 1 100); do curl -sf "$url/healthz" > /dev/null 2>&1 && break; sleep 0.2; done
  curl -sf "$url/v1/model" | python3 -m json.tool > "$out/plan-$name.json"
  "$bin" keygen --server "$url" --out "$tmp/keys-$name" | sed "s#$tmp/##" > "$out/keygen-$name.txt"
  images=100; [ "$mode" = batched ] && images=10000
  "$bin" query --server "$url" --keys "$tmp/keys-$name" --images "$images" --reference "$w" --json --quiet \
    | tail -n 1 > "$out/query-$name.json"
  kill "$spid"; wait "$spid" 2>/dev/null || true; spid=
done
bash benches/serve_load.sh 4 16 per-image "$w" "$out/serve_load-per-image.md"
bash benches/serve_load.sh 4 2048 batched "$w" "$out/serve_load-batched.md"
