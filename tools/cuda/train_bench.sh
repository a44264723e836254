#!/usr/bin/env bash
# F8 on the CUDA machine: builds mla-bench and test_trainer (Release, sm_90), runs the trainer's
# [gpu] cases (bf16 with f32 masters vs the f32 oracle), then tools/cuda/train_bench.py (a stage-2
# step of the LLaVA-NeXT-8B-shaped model, ours beside PyTorch eager). Results under $OUT.
# Usage: OUT=dir tools/cuda/train_bench.sh [train_bench.py args...]   (needs .deps: tools/stage_deps.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/train_bench_out}; mkdir -p "$OUT"
BUILD=${BUILD_DIR:-build-gpu}
PY=${MLAB_PYTHON:-$(command -v python3)}
export TORCH_CUDA_ARCH_LIST=9.0 NCCL_NVLS_ENABLE=0
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)
if [ ! -x "$BUILD/mla-bench" ] || [ "${REBUILD:-1}" = 1 ]; then
  cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DMLAB_CUDA=ON -DMLAB_PYTHON="$PY" \
    -DCMAKE_CUDA_COMPILER="$NVCC" -DMLAB_CUDA_ARCHITECTURES=90 >"$OUT/cmake.log" 2>&1 || { tail -40 "$OUT/cmake.log"; exit 1; }
  cmake --build "$BUILD" -j"$(nproc)" --target mla-bench test_trainer >"$OUT/build.log" 2>&1 || { grep -B2 -A8 "error" "$OUT/build.log" | head -80; exit 1; }
fi
echo "== test_trainer [gpu]"
MLAB_TEST_REPORT=1 "$BUILD/tests/test_trainer" "[gpu]" -s 2>&1 | grep -E "train bf16|passed|failed|FAILED|skipped" | tee "$OUT/test_trainer_gpu.txt" || true
echo "== train_bench.py"
"$PY" tools/cuda/train_bench.py --mla-bench "$BUILD/mla-bench" --out "$OUT" "$@"
