#!/usr/bin/env bash
# Stages the Gloo headers that torch/csrc/distributed/c10d/ProcessGroupGloo.hpp includes into the
# ignored .deps/include/gloo (the pip torch wheel ships libtorch_cpu.so with Gloo compiled in, but
# not its headers). The headers are taken at the gloo commit compiled into torch 2.11.0:
# pytorch/gloo 3135b0b (2025-12-01), identified from libtorch_cpu.so itself (docs/training.md,
# "Data parallel": it reads GLOO_LOG_LEVEL, added in a735743; gloo::logLevel() keeps an int8
# LogLevel, the enum class of 3135b0b; it has no setThreadName and no allreduce_shm strings, both
# in later commits). Only the headers are staged (never committed), plus the config.h that gloo's
# CMake would generate with torch's Linux settings.
#
# Usage: tools/stage_gloo.sh [GLOO_GIT_DIR]
#   GLOO_GIT_DIR (or $MLAB_GLOO_GIT): a git clone/mirror of github.com/pytorch/gloo holding the
#   commit; without one, the tarball of the commit is downloaded from GitHub (needs network).
# Called by tools/stage_deps.sh; can run on its own (it replaces only .deps/include/gloo).
set -euo pipefail
cd "$(dirname "$0")/.."
COMMIT=3135b0b41b67dde590eef0938a0bf3d6238df5f7
D=.deps/include
SRC=${1:-${MLAB_GLOO_GIT:-}}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [ -n "$SRC" ]; then
  git --git-dir="$(git -C "$SRC" rev-parse --absolute-git-dir 2>/dev/null || echo "$SRC")" \
    archive --format=tar "$COMMIT" gloo LICENSE | tar -x -C "$TMP"
else
  curl -fsSL "https://codeload.github.com/pytorch/gloo/tar.gz/$COMMIT" |
    tar -xz -C "$TMP" --strip-components=1
fi
rm -rf "$D/gloo"
mkdir -p "$D"
(cd "$TMP" && find gloo -name '*.h' -print0 | tar --null -cf - -T - LICENSE) | tar -x -C "$D"
mv "$D/LICENSE" "$D/gloo/LICENSE"
# gloo/config.h.in as gloo's CMake fills it for torch's Linux wheels: version 0.5.0, the TCP
# transport (+ TLS, which torch builds with USE_TCP_OPENSSL_LOAD), CUDA as torch was built; no
# NCCL/ROCm/Redis/ibverbs/MPI/libuv. None of the headers ProcessGroupGloo.hpp includes reads them.
CUDA=$(.venv/bin/python -c "import torch; print(1 if torch.version.cuda else 0)" 2>/dev/null || echo 0)
sed -e 's/@GLOO_VERSION_MAJOR@/0/; s/@GLOO_VERSION_MINOR@/5/; s/@GLOO_VERSION_PATCH@/0/' \
  -e "s/#cmakedefine01 GLOO_USE_CUDA\$/#define GLOO_USE_CUDA $CUDA/" \
  -e 's/#cmakedefine01 GLOO_HAVE_TRANSPORT_TCP$/#define GLOO_HAVE_TRANSPORT_TCP 1/' \
  -e 's/#cmakedefine01 GLOO_HAVE_TRANSPORT_TCP_TLS$/#define GLOO_HAVE_TRANSPORT_TCP_TLS 1/' \
  -e 's/#cmakedefine01 \(GLOO_[A-Z_]*\)$/#define \1 0/' \
  "$TMP/gloo/config.h.in" >"$D/gloo/config.h"
echo "$COMMIT" >"$D/gloo/COMMIT"
echo "stage_gloo.sh: $(find "$D/gloo" -name '*.h' | wc -l) gloo headers at $COMMIT in $D/gloo"
