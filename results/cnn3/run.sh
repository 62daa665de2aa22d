#!/usr/bin/env bash
# cnn3 (models/cnn3.toml: 2 convs, 3 activations) on MNIST and Fashion-MNIST,
# X2 and SLAF (degree 3), 30 epochs of P1's recipe, then encrypted inference
# with automatic 128-bit parameters: all 10,000 test images batched and the
# first 100 per image. Seeded test keys (73). Run from the repository root:
#   bash results/cnn3/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=target/release/slaf-he
out=results/cnn3
for ds in mnist fashion-mnist; do
  for act in x2 slaf; do
    m=$ds-cnn3-$act
    [ -f "$out/$m.json.gz" ] || "$bin" train --model models/cnn3.toml --act "$act" --dataset "$ds" \
      --epochs 30 --out "$out/$m.json.gz" --quiet > "$out/$m.log" 2>&1
    "$bin" infer --weights "$out/$m.json.gz" --mode batched --seed 73 --out "$out/$m-batched" --quiet
    "$bin" infer --weights "$out/$m.json.gz" --mode per-image --images 100 --seed 73 --out "$out/$m-per-image" --quiet
  done
done
