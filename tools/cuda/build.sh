#!/usr/bin/env bash
# Builds MLA-Bench on a CUDA machine against the LibTorch of the installed `torch` (CUDA kernels
# for sm_90), then runs the test suite including the [gpu] tests (not the [slow] ones unless
# MLAB_SLOW=1). Needs .deps/ from tools/stage_deps.sh (carried from the Debian machine).
# Usage: tools/cuda/build.sh [extra ctest args...]     env: BUILD_DIR (build-gpu), MLAB_PYTHON
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -d .deps ]; then
  echo "tools/cuda/build.sh: .deps/ is missing: run tools/stage_deps.sh on the Debian machine and carry .deps" >&2
  exit 2
fi
PY=${MLAB_PYTHON:-$(command -v python3)}
BUILD=${BUILD_DIR:-build-gpu}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} NCCL_NVLS_ENABLE=0
NVCC=$(command -v nvcc || true)
[ -n "$NVCC" ] || NVCC=/usr/local/cuda/bin/nvcc
[ -x "$NVCC" ] || { echo "tools/cuda/build.sh: nvcc not found" >&2; exit 2; }
GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "devices", torch.cuda.device_count())'
cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DMLAB_CUDA=ON \
  -DMLAB_PYTHON="$PY" -DCMAKE_CUDA_COMPILER="$NVCC" -DMLAB_CUDA_ARCHITECTURES=90
cmake --build "$BUILD" -j"$(nproc)"
LABELS=(-LE slow); [ "${MLAB_SLOW:-0}" = 1 ] && LABELS=()
ctest --test-dir "$BUILD" "${LABELS[@]}" --output-on-failure -j4 "$@"
