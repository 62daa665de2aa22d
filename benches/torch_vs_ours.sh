#!/usr/bin/env bash
# Epoch time of our training engine beside PyTorch CPU on the same machine,
# in one run, interleaved so that both see the same machine load:
#   benches/torch_vs_ours.sh [THREADS]   (default 2)
# Prints one line per model and writes results/training/epoch_time_vs_pytorch.md.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
cargo build --release --quiet
out=results/training/epoch_time_vs_pytorch.md
{
  echo "# Epoch time over 60,000 images: slaf-he vs PyTorch CPU ($threads threads)"
  echo
  echo "Measured by \`benches/torch_vs_ours.sh $threads\` on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(date -u +%Y-%m-%d); torch $("${PY:-/usr/bin/python3}" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo '?'). One epoch each of the SPEC §4 recipe, ReLU activations (CryptoNets: x²), machine possibly shared."
  echo
  echo "| model | slaf-he (s) | PyTorch (s) | ratio ours/PyTorch |"
  echo "|---|---:|---:|---:|"
} > "$out.tmp"
for model in cnn1 cnn2 cryptonets; do
  act=relu
  [ "$model" = cryptonets ] && act=x2
  torch_s=$(benches/torch_epoch.sh --model "$model" --act "$act" --threads "$threads" --epochs 1 | grep -o '[0-9.]* s' | head -1 | cut -d' ' -f1)
  ours_s=$(./target/release/slaf-he train --model "$model" --act "$act" --epochs 1 --threads "$threads" -q --json | tail -1 | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["train_seconds"], 2))')
  ratio=$(python3 -c "print(f'{$ours_s/$torch_s:.2f}')")
  echo "$model: ours $ours_s s, PyTorch $torch_s s, ratio $ratio"
  echo "| $model-$act | $ours_s | $torch_s | $ratio |" >> "$out.tmp"
done
mv "$out.tmp" "$out"
echo "wrote $out"
