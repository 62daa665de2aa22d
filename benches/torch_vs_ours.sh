#!/usr/bin/env bash
# Epoch time of our training engine beside PyTorch CPU on the same machine,
# in one run, interleaved so that both see the same machine load:
#   benches/torch_vs_ours.sh [THREADS] [EPOCHS]   (defaults 2 and 3)
# Each engine trains EPOCHS epochs of the SPEC §4 recipe per model and
# activation; the time of one epoch is the training loop over 60,000 images
# (no test evaluation, no data loading), the median over the epochs.
# Prints one line per row and writes results/training/epoch_time_vs_pytorch.md.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
epochs=${2:-3}
cargo build --release --quiet
out=results/training/epoch_time_vs_pytorch.md
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
torch_version=$(benches/torch_epoch.sh --print-version)
{
  echo "# Epoch time over 60,000 images: slaf-he vs PyTorch CPU ($threads threads)"
  echo
  echo "Measured by \`benches/torch_vs_ours.sh $threads $epochs\` on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(date -u +%Y-%m-%d); torch $torch_version. Median over $epochs epochs of the SPEC §4 recipe (training loop only; clipping 1.0 for polynomial activations), machine possibly shared."
  echo
  echo "| model | slaf-he (s) | PyTorch (s) | ratio ours/PyTorch |"
  echo "|---|---:|---:|---:|"
} > "$out.tmp"
for row in cnn1:relu cnn1:slaf cnn2:relu cnn2:slaf cryptonets:x2; do
  model=${row%%:*}
  act=${row##*:}
  torch_s=$(benches/torch_epoch.sh --model "$model" --act "$act" --threads "$threads" --epochs "$epochs" | sed -n 's/.*epoch [0-9]*: \([0-9.]*\) s .*/\1/p' | median)
  ours_s=$(./target/release/slaf-he train --model "$model" --act "$act" --epochs "$epochs" --threads "$threads" -q | sed -n 's/^train epoch.*(\([0-9.]*\) s)$/\1/p' | median)
  ratio=$(python3 -c "print(f'{$ours_s/$torch_s:.2f}')")
  echo "$model-$act: ours $ours_s s, PyTorch $torch_s s, ratio $ratio"
  echo "| $model-$act | $ours_s | $torch_s | $ratio |" >> "$out.tmp"
done
mv "$out.tmp" "$out"
echo "wrote $out"
