#!/usr/bin/env bash
# Seed study of the 30-epoch recipe (issue 5): the same runs as run_all.sh
# under several shuffling/initialisation seeds, to tell a recipe's effect
# from seed noise. Each run writes results/training/seeds/<run>-s<seed>.log
# (the `--json` summary on its last line; no weights file). Runs whose log
# already ends in a JSON summary are skipped, so the script resumes.
# summarize_seeds.py then writes seeds.md / seeds.csv (mean, sd, min, max).
# Usage (repository root, after `cargo build --release`):
#   results/training/seeds.sh                 # every run below (~1 h 15 min on 2 cores)
#   results/training/seeds.sh cnn1-slaf       # only the named runs
#   results/training/seeds.sh torch-cnn1-slaf # PyTorch runs (benches/torch_epoch.sh)
set -u
out=results/training/seeds
bin=${SLAF_HE_BIN:-./target/release/slaf-he}
mkdir -p "$out"
# name | seeds | train arguments. Seed 73 of the CNN2/CryptoNets runs is the
# main run of run_all.sh (summarize_seeds.py reads it from there).
runs=(
  "cnn1-relu|73 74 75 76 77 78 79 80 81 82|--model cnn1 --act relu"
  "cnn1-x2|73 74 75 76 77 78 79 80 81 82|--model cnn1 --act x2"
  "cnn1-slaf|73 74 75 76 77 78 79 80 81 82|--model cnn1 --act slaf"
  "cnn1-slaf-p|73 74 75 76 77 78 79 80 81 82|--model cnn1 --act slaf-p"
  "cnn1-slaf-r|73 74 75 76 77|--model cnn1 --act slaf-r"
  "cnn1-slaf-r-adam|73 74 75 76 77|--model cnn1 --act slaf-r --slaf-r-optimizer adam"
  "cnn1-slaf-r-as-published|73 74 75 76 77|--model cnn1 --act slaf-r --as-published"
  "cnn1-slaf-clip05|73 74 75 76 77 78 79 80 81 82|--model cnn1 --act slaf --clip-grad 0.5"
  "cnn1-slaf-r-adam5|73 74 75 76 77|--model cnn1 --act slaf-r --slaf-r-optimizer adam --slaf-r-epochs 5"
  "cnn2-x2-noclip|73|--model cnn2 --act x2 --clip-grad 0"
  "cnn2-x2|74 75|--model cnn2 --act x2"
  "cnn2-slaf|75|--model cnn2 --act slaf"
  "cnn2-slaf-r|74|--model cnn2 --act slaf-r"
  "cryptonets-x2|74|--model cryptonets --act x2"
)
# The same recipe in PyTorch on this machine (benches/torch_epoch.sh --eval:
# Kaiming conv init, clipping 1.0 for polynomial activations), logged as
# seeds/torch-<run>-s<seed>.log.
torch_runs=(
  "torch-cnn1-relu|73 74 75|--model cnn1 --act relu"
  "torch-cnn1-x2|73 74 75|--model cnn1 --act x2"
  "torch-cnn1-slaf|73 74 75 76 77 78 79 80 81 82|--model cnn1 --act slaf"
)
run_all() {  # run_all CMD RUNS...
  local cmd=$1
  shift
  for line in "$@"; do
    IFS='|' read -r name seeds args <<< "$line"
    if [ ${#selected[@]} -gt 0 ] && [[ ! " ${selected[*]} " == *" $name "* ]]; then continue; fi
    for seed in $seeds; do
      log="$out/$name-s$seed.log"
      if [ -f "$log" ] && tail -n 1 "$log" | grep -q '^{'; then continue; fi
      echo "== $name seed $seed: $cmd $args --seed $seed"
      # shellcheck disable=SC2086
      $cmd $args --seed "$seed" > "$log" 2>&1
      echo "   exit $?: $(tail -n 1 "$log" | cut -c1-120)"
    done
  done
}
selected=("$@")
run_all "$bin train --threads 2 -q --json" "${runs[@]}"
run_all "benches/torch_epoch.sh --threads 2 --epochs 30 --eval" "${torch_runs[@]}"
python3 results/training/summarize_seeds.py > /dev/null
