#!/usr/bin/env bash
# Runs the test suite: sets up and builds first when needed (tools/setup.sh), then CTest without
# the [slow] tests. Extra arguments go to ctest (e.g. -L slow for the slow ones, -R safetensors).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${MLAB_BUILD_DIR:-build}
tools/setup.sh
LABELS=(-LE slow)
for a in "$@"; do case "$a" in -L|-LE|--label-regex|--label-exclude) LABELS=() ;; esac; done
ctest --test-dir "$BUILD" "${LABELS[@]}" --output-on-failure -j"${MLAB_JOBS:-$(nproc)}" "$@"
