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
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# Same cargo settings as notebooks/run.sh, so both reuse one build.
export CARGO_PROFILE_DEV_DEBUG_ASSERTIONS=false CARGO_PROFILE_DEV_OVERFLOW_CHECKS=false
export CARGO_PROFILE_DEV_DEBUG=0
# flock(1) holds the lock for the kernel's lifetime and closes it for the
# kernel itself (-o), so no child of evcxr can keep the folder locked after
# the kernel has been shut down. (Two kernels starting in the same instant
# can both pass the test; the second one's flock then exits and Jupyter
# reports that kernel as dead: restart it.)
if flock -n -o "$dir/.kernel.lock" true; then
  exec flock -n -o "$dir/.kernel.lock" env EVCXR_TMPDIR="$dir" evcxr_jupyter --control_file "$1"
fi
echo "kernel.sh: $dir is in use by another kernel; this one builds in a fresh temporary folder (cold)" >&2
exec evcxr_jupyter --control_file "$1"
