#!/usr/bin/env bash
# Load benchmark of the service's scale-out (issue #40): one replica alone,
# then three replicas behind HAProxy sharing one bundle store with one
# replica killed mid-run, in the same run. Writes results/service/scaleout.md.
#   bash benches/serve_scaleout.sh [REQUESTS_PER_CLIENT]   (default 200; 3 clients)
# Needs the Debian package haproxy.
set -euo pipefail
cd "$(dirname "$0")/.."
export SLAF_SCALEOUT_REQUESTS="${1:-200}"
export SLAF_SCALEOUT_OUT="$PWD/results/service/scaleout.md"
cargo test --release --test service_scaleout -- --nocapture
echo "wrote $SLAF_SCALEOUT_OUT"
