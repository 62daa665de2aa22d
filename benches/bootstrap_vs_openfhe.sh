#!/usr/bin/env bash
# One run, both libraries: slaf-he's CKKS bootstrapping against OpenFHE's
# (the `openfhe` PyPI wheel, which imports under CPython 3.10), on 1 and 2
# threads, written to results/bootstrap/openfhe.md with the machine.
#   bash benches/bootstrap_vs_openfhe.sh [--quick] [--toy-only] [--out FILE.md]
# --quick: one bootstrap per row (else the median of 3); --toy-only: the
# N = 2^12 rows only (seconds; the N = 2^16 rows take about 15 minutes and
# 14 GiB of memory at their peak).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
py310=""
for c in python3.10 /usr/bin/python3.10 "$HOME"/.pyenv/versions/3.10*/bin/python; do
    if "$c" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then py310=$c; break; fi
done
[ -n "$py310" ] || { echo "CPython 3.10 is needed for the openfhe wheel (apt or pyenv)" >&2; exit 1; }
venv=target/venv-openfhe
[ -x "$venv/bin/python" ] || "$py310" -m venv "$venv"
"$venv/bin/python" -m pip install -q "openfhe==1.6.1.0.22.4"
python3 benches/bootstrap_vs_openfhe.py --openfhe-python "$venv/bin/python" "$@"
