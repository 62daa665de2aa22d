#!/usr/bin/env bash
# Load test of `slaf-he serve` on loopback: CLIENTS concurrent clients each
# classify IMAGES test images (per-image: one image per request; batched:
# one batch per request), beside an in-process `slaf-he infer` of the same
# images in the same run. Prints a markdown table of throughput (images/s),
# p50/p95 request latency, the server's peak RSS and the ratio served /
# in-process, headed by the CPU model, SIMD flags, thread count and load.
#
#   bash benches/serve_load.sh [CLIENTS] [IMAGES] [MODE] [WEIGHTS] [OUT.md]
#
# Defaults: 4 clients x 16 images, per-image, results/training/cnn1-x2.json.gz.
# Bounded: at most 8 clients and 64 images per client (per-image) or 4096
# (batched; one batch each), CLIENTS x IMAGES within the 10000 test images,
# and every command runs under `timeout`. Key generation and
# bundle registration happen before the timed window (a warm server), and
# the timed window covers each client process end to end (loading its key
# folder and the test images, encryption, HTTP, decryption).
set -euo pipefail
clients=${1:-4}
images=${2:-16}
mode=${3:-per-image}
weights=${4:-results/training/cnn1-x2.json.gz}
out=${5:-}
bin=${SLAF_HE:-target/release/slaf-he}
max_images=64; [ "$mode" = batched ] && max_images=4096
if [ "$clients" -lt 1 ] || [ "$clients" -gt 8 ] || [ "$images" -lt 1 ] || [ "$images" -gt "$max_images" ]; then
  echo "serve_load.sh: 1..8 clients and 1..$max_images images per client" >&2; exit 2
fi
if [ $((clients * images)) -gt 10000 ]; then
  echo "serve_load.sh: CLIENTS x IMAGES must fit the 10000 test images" >&2; exit 2
fi
[ -x "$bin" ] || { echo "serve_load.sh: build first (cargo build --release)" >&2; exit 2; }
tmp=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
url="http://127.0.0.1:$port"
cleanup() { [ -n "${spid:-}" ] && kill "$spid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# In-process baseline: the same images and the same requests (one `infer`
# per client's share, run one after another: in batched mode each share is
# one batch, as on the server), one process at a time, every core.
for c in $(seq 1 "$clients"); do
  timeout 1800 "$bin" infer --weights "$weights" --mode "$mode" --images "$images" \
    --offset $(((c - 1) * images)) --json --quiet | tail -n 1 > "$tmp/inproc$c.json"
done

"$bin" serve --model "$weights" --mode "$mode" --addr "127.0.0.1:$port" --workers 2 > "$tmp/serve.log" 2>&1 &
spid=$!
for _ in $(seq 1 100); do curl -sf "$url/healthz" > /dev/null 2>&1 && break; sleep 0.2; done
curl -sf "$url/healthz" > /dev/null || { cat "$tmp/serve.log" >&2; exit 1; }
# Keys and registration (untimed).
for c in $(seq 1 "$clients"); do
  timeout 600 "$bin" keygen --server "$url" --out "$tmp/keys$c" > /dev/null
  timeout 600 "$bin" query --server "$url" --keys "$tmp/keys$c" --images 1 --json --quiet > /dev/null
done
# Timed window: every client at once, disjoint images.
start=$(date +%s.%N)
pids=()
for c in $(seq 1 "$clients"); do
  timeout 1800 "$bin" query --server "$url" --keys "$tmp/keys$c" --images "$images" \
    --offset $(((c - 1) * images)) --reference "$weights" --json --quiet > "$tmp/client$c.json" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
end=$(date +%s.%N)
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$spid/status")
python3 - "$tmp" "$clients" "$images" "$mode" "$start" "$end" "$rss_kib" "$out" <<'PY'
import json, sys
sys.path.insert(0, "benches")
from machine_facts import machine_line
tmp, clients, images, mode, start, end, rss, out = sys.argv[1:9]
clients, images = int(clients), int(images)
wall = float(end) - float(start)
shares = [json.load(open(f"{tmp}/inproc{c}.json")) for c in range(1, clients + 1)]
inproc = {
    "images": sum(x["images"] for x in shares),
    "wall_seconds": sum(x["wall_seconds"] for x in shares),
    "peak_rss_bytes": max(x.get("peak_rss_bytes") or 0 for x in shares),
    "he_accuracy": sum(x["he_accuracy"] * x["images"] for x in shares) / sum(x["images"] for x in shares),
}
runs = [json.loads(open(f"{tmp}/client{c}.json").read().strip().splitlines()[-1]) for c in range(1, clients + 1)]
n = clients * images
served = n / wall
base = inproc["images"] / inproc["wall_seconds"]
agree = sum(r["agreement"] * r["images"] for r in runs) / n
acc = sum(r["correct"] for r in runs) / n
p50 = sorted(r["latency_p50_ms"] for r in runs)[len(runs) // 2]
p95 = max(r["latency_p95_ms"] for r in runs)
up = sum(r["bytes_up"] for r in runs) / max(1, sum(r["requests"] for r in runs))
down = sum(r["bytes_down"] for r in runs) / max(1, sum(r["requests"] for r in runs))
lines = [
    f"{machine_line()}; "
    f"{clients} clients x {images} images, {mode}, server with 2 workers.", "",
    "| run | images | wall (s) | images/s | p50 latency (ms) | p95 latency (ms) | peak RSS (MiB) | ratio |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    f"| in-process `infer` | {inproc['images']} | {inproc['wall_seconds']:.2f} | {base:.2f} | | | "
    f"{(inproc.get('peak_rss_bytes') or 0) / 2**20:.0f} | 1.00 |",
    f"| served, {clients} clients | {n} | {wall:.2f} | {served:.2f} | {p50:.0f} | {p95:.0f} | "
    f"{int(rss) / 1024:.0f} | {served / base:.2f} |",
    "",
    f"Served accuracy {100 * acc:.2f} %, agreement with the plaintext model {100 * agree:.2f} %; "
    f"per request {up / 2**20:.2f} MiB up, {down / 2**20:.3f} MiB down "
    f"(in-process accuracy {100 * inproc['he_accuracy']:.2f} %).",
]
text = "\n".join(lines) + "\n"
print(text, end="")
if out:
    open(out, "w").write(text)
PY
