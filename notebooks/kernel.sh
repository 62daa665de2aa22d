#!/usr/bin/env bash
# The "rust" kernel's entry point (notebooks/setup.sh points the kernelspec
# here): evcxr_jupyter with the repository's warm build folder.
#
# evcxr compiles the `:dep` crates inside EVCXR_TMPDIR and reuses them from
# there in a later session; without it every kernel starts in a fresh
# temporary folder and recompiles everything (8-13 min on 2 cores). The
# folder holds one session's crate, so two kernels must not share it: the
# first kernel takes an advisory lock and uses the shared, warm folder
# (target/evcxr, the one notebooks/run.sh and setup.sh --prebuild fill); a
# kernel started while another holds it falls back to evcxr's own temporary
# folder (cold, but safe) and says so on stderr.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir="${EVCXR_TMPDIR:-$here/../target/evcxr}"
mkdir -p "$dir"
exec 9>"$dir/.kernel.lock"
if flock -n 9; then
  export EVCXR_TMPDIR="$dir"
else
  unset EVCXR_TMPDIR
  exec 9>&-
  echo "kernel.sh: $dir is in use by another kernel; this one builds in a fresh temporary folder (cold)" >&2
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# Same cargo settings as notebooks/run.sh, so both reuse one build.
export CARGO_PROFILE_DEV_DEBUG_ASSERTIONS=false CARGO_PROFILE_DEV_OVERFLOW_CHECKS=false
export CARGO_PROFILE_DEV_DEBUG=0
exec evcxr_jupyter --control_file "$1"
