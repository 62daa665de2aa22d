#!/usr/bin/env bash
# Full 30-epoch recipe (SPEC.md §4) for every variant. Each run writes
# results/training/<run>.log (per-epoch lines, per-class accuracy, the JSON
# summary on the last line) and <run>.json.gz (weights file); summarize.py
# then builds summary.md / summary.csv.
# Usage (repository root, after `cargo build --release`):
#   results/training/run_all.sh              # every run below
#   results/training/run_all.sh cnn2-slaf    # only the named runs
set -u
out=results/training
bin=${SLAF_HE_BIN:-./target/release/slaf-he}
runs=(
  "cnn1-relu --model cnn1 --act relu"
  "cnn1-x2 --model cnn1 --act x2"
  "cnn1-slaf --model cnn1 --act slaf"
  "cnn1-slaf-seed74 --model cnn1 --act slaf --seed 74"
  "cnn1-slaf-seed75 --model cnn1 --act slaf --seed 75"
  "cnn1-slaf-p --model cnn1 --act slaf-p"
  "cnn1-slaf-r --model cnn1 --act slaf-r"
  "cnn1-slaf-r-adam --model cnn1 --act slaf-r --slaf-r-optimizer adam"
  "cnn1-slaf-r-as-published --model cnn1 --act slaf-r --as-published"
  "cnn2-relu --model cnn2 --act relu"
  "cnn2-x2 --model cnn2 --act x2"
  "cnn2-slaf --model cnn2 --act slaf"
  "cnn2-slaf-seed74 --model cnn2 --act slaf --seed 74"
  "cnn2-slaf-r --model cnn2 --act slaf-r"
  "cnn2-slaf-r-adam --model cnn2 --act slaf-r --slaf-r-optimizer adam"
  "cnn2-slaf-r-adam-bn-running --model cnn2 --act slaf-r --slaf-r-optimizer adam --slaf-r-bn running"
  "cnn2-slaf-p --model cnn2 --act slaf-p"
  "cryptonets-x2 --model cryptonets --act x2"
)
for line in "${runs[@]}"; do
  read -r name args <<< "$line"
  if [ $# -gt 0 ] && [[ ! " $* " == *" $name "* ]]; then continue; fi
  echo "== $name: slaf-he train $args --threads 2 -q --json --out $out/$name.json.gz"
  # shellcheck disable=SC2086
  $bin train $args --threads 2 -q --json --out "$out/$name.json.gz" > "$out/$name.log" 2>&1
  echo "   exit $?: $(tail -n 1 "$out/$name.log")"
done
python3 "$out/summarize.py" > /dev/null
