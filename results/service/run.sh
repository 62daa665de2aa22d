#!/usr/bin/env bash
# The client/server split measured on loopback: CNN1-X2 served in both
# modes, keys made by `keygen` from the published plan, `query` with the
# local plaintext model as reference (agreement), then the load benchmark.
# Writes into results/service/: plan-MODE.json, keygen-MODE.txt,
# query-MODE.json (one summary line each) and serve_load-MODE.md.
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
for mode in per-image batched; do
  port=$((20000 + RANDOM % 20000))
  url="http://127.0.0.1:$port"
  "$bin" serve --model "$w" --mode "$mode" --addr "127.0.0.1:$port" > "$tmp/serve-$mode.log" 2>&1 &
  spid=$!
  for _ in $(seq 1 100); do curl -sf "$url/healthz" > /dev/null 2>&1 && break; sleep 0.2; done
  curl -sf "$url/v1/model" | python3 -m json.tool > "$out/plan-$mode.json"
  "$bin" keygen --server "$url" --out "$tmp/keys-$mode" | sed "s#$tmp/##" > "$out/keygen-$mode.txt"
  images=100; [ "$mode" = batched ] && images=10000
  "$bin" query --server "$url" --keys "$tmp/keys-$mode" --images "$images" --reference "$w" --json --quiet \
    | tail -n 1 > "$out/query-$mode.json"
  kill "$spid"; wait "$spid" 2>/dev/null || true; spid=
done
bash benches/serve_load.sh 4 16 per-image "$w" "$out/serve_load-per-image.md"
bash benches/serve_load.sh 4 2048 batched "$w" "$out/serve_load-batched.md"
