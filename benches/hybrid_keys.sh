#!/usr/bin/env bash
# Hybrid key switching against one digit per prime, one run, single thread:
# `slaf-he bench ckks` on N = 2^14, [40, 26x11] with one 40-bit special
# prime (dnum = 11, SEAL's layout) and with three 31-bit special primes and
# dnum 4. Each run's first lines name the CPU, SIMD, threads and load.
#   bash benches/hybrid_keys.sh [OUT.txt]   (e.g. results/ckks/hybrid_avx2_only.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SLAF_HE_BIN:-target/release/slaf-he}
[ -n "${SLAF_HE_BIN:-}" ] || cargo build --release -q
out=${1:-/dev/stdout}
chain=40$(printf ',26%.0s' $(seq 11))
common=(bench ckks --poly-modulus-degree 16384 --scale-bits 26 --threads 1)
{
  echo "# bash benches/hybrid_keys.sh $*"
  echo "## one special prime, one digit per prime: slaf-he ${common[*]} --coeff-mod-bit-sizes $chain,40"
  "$bin" "${common[@]}" --coeff-mod-bit-sizes "$chain,40"
  echo "## three 31-bit special primes, dnum 4: slaf-he ${common[*]} --coeff-mod-bit-sizes $chain,31,31,31 --special-primes 3 --dnum 4"
  "$bin" "${common[@]}" --coeff-mod-bit-sizes "$chain,31,31,31" --special-primes 3 --dnum 4
} > "$out"
