#!/usr/bin/env bash
# F3 on the lent CUDA machine: build + the whole suite including [gpu] (device_run.sh), the
# [gpu] VLM parity test with its figures, then tools/cuda/vlm_gpu_check.py (bf16 parity with
# transformers on the tiny fixtures; speed and memory on random weights with the real configs).
# Usage: OUT=... tools/cuda/device_vlm.sh [build|parity|bench MODEL...]   (default: all steps)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
B=${BUILD_DIR:-build-gpu}
step=${1:-all}; shift || true
if [ "$step" = all ] || [ "$step" = build ]; then
  OUT="$OUT" bash tools/cuda/device_run.sh
  MLAB_TEST_REPORT=1 "$B/tests/test_vlm" "[gpu]" 2>&1 | tee "$OUT/vlm_gpu_test.log"
fi
if [ "$step" = all ] || [ "$step" = parity ]; then
  python3 tools/cuda/vlm_gpu_check.py --mla-bench "$B/mla-bench" --out "$OUT/parity" --parity \
    2>&1 | tee "$OUT/parity.log"
fi
if [ "$step" = all ] || [ "$step" = bench ]; then
  models=("$@"); [ ${#models[@]} -gt 0 ] || models=(llava-1.5-7b-hf llama3-llava-next-8b-hf Qwen2.5-VL-7B-Instruct)
  for m in "${models[@]}"; do
    python3 tools/cuda/vlm_gpu_check.py --mla-bench "$B/mla-bench" --out "$OUT/bench-$m" \
      --bench "$m" --with-eager 2>&1 | tee "$OUT/bench-$m.log"
  done
fi
